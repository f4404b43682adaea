"""Style representations (nst_jax.style) against independent references on small random features: float64
NumPy closed forms (Gram, moments, MMD kernel sums) and POT (sliced Wasserstein with the same
projections); a style loss written in the test is optimised; bands stay exact for sums over positions; bad
options refused."""

import jax
import jax.numpy as jnp
import numpy as np
import ot
import pytest

from nst_jax import gatys, metrics, style

from .helpers import assert_clean_error, run


@pytest.fixture(scope="module")
def images(photo):
    from nst_jax import image as im

    yy, xx = np.mgrid[0:64, 0:64] / 64.0
    painting = np.stack([np.sin(25 * (xx + yy)) * 0.5 + 0.5, xx ** 2, 1 - yy], -1).astype(np.float32)
    return im.resize_longest(photo, 64), painting


def features(seed, h, w, c, shift=0.0):
    rng = np.random.default_rng(seed)
    return np.maximum(rng.normal(shift, 1.0, (1, h, w, c)), 0).astype(np.float32)  # ReLU-like


def flat(f):
    return np.asarray(f, np.float64).reshape(-1, f.shape[-1])


def test_gram_and_moments_against_float64():
    f, s = features(0, 6, 7, 5), features(1, 8, 4, 5, shift=0.5)
    x, y = flat(f), flat(s)
    g = lambda a: a.T @ a / (a.shape[1] * a.shape[0])  # noqa: E731
    expected = np.mean((g(x) - g(y)) ** 2)
    assert float(style.GRAM.distance(jnp.asarray(f), style.GRAM.target(jnp.asarray(s)), None)) == \
        pytest.approx(expected, rel=1e-5)
    mom = style.MOMENTS
    ms, ss = y.mean(0), np.sqrt(y.var(0) + style.EPS)
    mx, sx = x.mean(0), np.sqrt(x.var(0) + style.EPS)
    expected = np.mean((mx - ms) ** 2) + np.mean((sx - ss) ** 2)
    assert float(mom.distance(jnp.asarray(f), mom.target(jnp.asarray(s)), None)) == pytest.approx(expected,
                                                                                                   rel=1e-5)
    # the sums path (bands) is the same function
    for rep in (style.GRAM, style.MOMENTS, style.MMD_POLY):
        t = rep.target(jnp.asarray(s))
        via_sums = rep.value(rep.summarise(jnp.asarray(f)), 42, t, None)
        assert float(via_sums) == pytest.approx(float(rep.distance(jnp.asarray(f), t, None)), rel=1e-5)


def test_mmd_poly_is_the_kernel_sums():
    """MMD^2 with k(a, b) = (a.b + c)^2, c the style's mean squared norm, as M x N kernel sums that never form
    a Gram matrix, divided by C^4."""
    f, s = features(2, 5, 6, 4), features(3, 7, 3, 4, shift=0.3)
    x, y = flat(f), flat(s)
    c0 = np.mean(np.sum(y * y, 1))
    k = lambda a, b: (a @ b.T + c0) ** 2  # noqa: E731
    mmd = k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean()
    got = style.MMD_POLY.distance(jnp.asarray(f), style.MMD_POLY.target(jnp.asarray(s)), None)
    assert float(got) == pytest.approx(mmd / x.shape[1] ** 4, rel=1e-4)


def test_mmd_rbf_is_the_gaussian_kernel_sums():
    f, s = features(4, 8, 9, 6), features(5, 16, 16, 6, shift=0.4)  # 72 positions, a sample of 256
    x, y = flat(f), flat(s)
    t = style._rbf_finish(jnp.asarray(y, jnp.float32))  # every position: no sampling below 1024
    sigma2 = np.mean(((y[:, None] - y[None]) ** 2).sum(-1))
    k = lambda a, b: np.exp(-((a[:, None] - b[None]) ** 2).sum(-1) / (2 * sigma2))  # noqa: E731
    mmd = k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean()
    assert float(t["sigma2"]) == pytest.approx(sigma2, rel=1e-5)
    assert float(style.mmd_rbf_distance(jnp.asarray(f), t, jax.random.key(0))) == pytest.approx(mmd, rel=1e-4,
                                                                                                 abs=1e-6)


def test_sliced_wasserstein_against_pot():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(200, 7)), rng.normal(0.5, 2.0, size=(200, 7))
    d = np.asarray(style.directions(jax.random.key(1), 7, 11), np.float64)
    expected = ot.sliced.sliced_wasserstein_distance(x, y, projections=d) ** 2
    got = style.sliced_wasserstein(jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32), jnp.asarray(d))
    assert float(got) == pytest.approx(expected, rel=1e-5)
    # the measure of nst_jax.metrics (ott-jax, any sizes) against POT on unequal sizes
    from ott.tools import sliced

    y2 = y[:130]
    cost, _ = sliced.sliced_wasserstein(jnp.asarray(x, jnp.float32), jnp.asarray(y2, jnp.float32),
                                        proj_fn=lambda z, *_, **__: z @ jnp.asarray(d, jnp.float32))
    assert float(cost) == pytest.approx(ot.sliced.sliced_wasserstein_distance(x, y2, projections=d) ** 2,
                                        rel=1e-4)


def test_histogram_loss_is_rissers_exact_remapping():
    """Equal sizes: each channel's squared 2-Wasserstein distance (POT's 1-D transport), averaged.  Unequal
    sizes: Risser et al.'s ``mean((O - R(O))^2)``, R each channel remapped by rank to the painting's quantile
    function (float64 NumPy, np.interp), and its gradient ``2 (O - R(O)) / (M C)``."""
    rng = np.random.default_rng(12)
    f, s = rng.normal(size=(1, 64, 64, 5)), rng.gamma(2.0, 1.0, size=(1, 64, 64, 5))  # 4096 = SAMPLE each
    t = style.HISTOGRAM.target(jnp.asarray(s, jnp.float32))
    got = style.histogram_distance(jnp.asarray(f, jnp.float32), t)
    expected = np.mean([ot.wasserstein_1d(flat(f)[:, c], flat(s)[:, c], p=2) for c in range(5)])
    assert float(got) == pytest.approx(expected, rel=1e-5)

    x = rng.normal(size=(1, 9, 11, 5))  # 99 positions against the painting's 4096 quantiles
    k = np.sort(flat(s), axis=0)
    levels = (np.arange(99) + 0.5) / 99
    remapped = np.empty((99, 5))
    for c in range(5):
        rank = np.argsort(np.argsort(flat(x)[:, c]))
        remapped[:, c] = np.interp(levels[rank], (np.arange(4096) + 0.5) / 4096, k[:, c])
    value, grad = jax.value_and_grad(style.histogram_distance)(jnp.asarray(x, jnp.float32), t)
    assert float(value) == pytest.approx(np.mean((flat(x) - remapped) ** 2), rel=1e-5)
    np.testing.assert_allclose(np.asarray(grad).reshape(99, 5), 2 * (flat(x) - remapped) / (99 * 5),
                               rtol=1e-4, atol=1e-8)
    # a blend's target is the mixture's quantiles; weights (1, 0) give the first painting's
    t2 = style.HISTOGRAM.target(jnp.asarray(f, jnp.float32))
    np.testing.assert_array_equal(style.HISTOGRAM.mixed([t, t2], [1.0, 0.0])["sorted"], t["sorted"])
    half = style.HISTOGRAM.mixed([t, t2], [0.5, 0.5])["sorted"]
    both = np.concatenate([flat(s), flat(f)])
    np.testing.assert_allclose(np.median(np.asarray(half), 0), np.median(both, 0), atol=0.05)


def test_relaxed_emd_bounds_pots_exact_emd():
    """STROTSS's relaxation against POT's exact EMD (uniform weights, the same cosine cost in float64): a
    lower bound, equal to the closed form max(mean_i min_j C, mean_j min_i C), and zero between a set and
    itself."""
    rng = np.random.default_rng(13)
    for m, k in ((12, 12), (10, 15)):
        x, y = np.abs(rng.normal(size=(m, 6))), np.abs(rng.normal(0.3, 1.0, size=(k, 6)))
        unit = [a / np.linalg.norm(a, axis=1, keepdims=True) for a in (x, y)]
        cost = 1 - unit[0] @ unit[1].T
        exact = ot.emd2(np.full(m, 1 / m), np.full(k, 1 / k), cost)
        relaxed = max(cost.min(1).mean(), cost.min(0).mean())
        got = float(style.relaxed_emd(jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)))
        assert got == pytest.approx(relaxed, rel=1e-5, abs=1e-6)
        assert got <= exact + 1e-6 and relaxed < exact  # strictly: the sets are not matched one to one
    assert float(style.relaxed_emd(jnp.asarray(x, jnp.float32), jnp.asarray(x[::-1], jnp.float32))) < 1e-6


def test_remd_is_strotss_relaxed_emd_plus_moments():
    f, s = features(14, 9, 8, 6) + 0.1, features(15, 16, 16, 6, shift=0.5) + 0.1  # 72 positions; 256
    t = style.REMD.target(jnp.asarray(s))
    sample = np.asarray(t["sample"], np.float64)[:style.MMD_POSITIONS]  # every painting position, 4 times
    np.testing.assert_allclose(np.sort(sample[:256], 0), np.sort(flat(s), 0), rtol=1e-6)
    x = flat(f)  # 72 <= MMD_POSITIONS: every position of the picture
    cos = (x / np.linalg.norm(x, axis=1, keepdims=True)) @ (sample / np.linalg.norm(sample, axis=1,
                                                                                     keepdims=True)).T
    relaxed = max((1 - cos).min(1).mean(), (1 - cos).min(0).mean())
    scale = np.sqrt(np.mean(flat(s) ** 2))  # the sample holds every position 16 times: the same RMS
    xs, ss = x / scale, sample / scale
    moments = (np.abs(xs.mean(0) - ss.mean(0)).sum() / 6
               + np.abs(np.cov(xs.T, bias=True) - np.cov(ss.T, bias=True)).sum() / 36)
    got = style.remd_distance(jnp.asarray(f), t, jax.random.key(0))
    assert float(got) == pytest.approx(relaxed + moments, rel=1e-4)


def test_sample_targets_mix_as_a_mixture():
    a, b = features(7, 64, 64, 3), features(8, 64, 64, 3, shift=3.0)
    ta, tb = style.SWD.target(jnp.asarray(a)), style.SWD.target(jnp.asarray(b))
    t = style.SWD.mixed([ta, tb], [0.25, 0.75])
    assert t["sample"].shape == (style.SAMPLE, 3)
    np.testing.assert_array_equal(t["sample"][:1024], ta["sample"][:1024])
    np.testing.assert_array_equal(t["sample"][1024:], tb["sample"][:3072])
    distinct = np.random.default_rng(9).random((1, 10, 10, 3)).astype(np.float32)
    small = style.SWD.target(jnp.asarray(distinct))["sample"]  # 100 positions, each 40 or 41 times
    counts = np.unique(np.asarray(small), axis=0, return_counts=True)[1]
    assert len(counts) == 100 and counts.min() >= 40 and counts.max() <= 41


@pytest.mark.slow
def test_custom_style_loss_moves_channel_means(params, images):
    """A StyleLoss written here (the channel means), optimised by stylize: the picture's VGG channel means
    move at least half way from the photo's to the painting's."""
    content, painting = images
    mine = style.StyleLoss(target=lambda f: f.mean(axis=(1, 2)),
                           distance=lambda f, t, key: ((f.mean(axis=(1, 2)) - t) ** 2).mean())
    x, report = gatys.stylize(content, painting, size=64, iters=30, style_loss=mine, style_weight=1000.0,
                              content_weight=1.0, weights=params)
    assert report["style_loss"] == "custom"
    from nst_jax.vgg import vgg19_features

    def means(img, side):
        from nst_jax import image as im

        f = vgg19_features(params, jnp.asarray(im.resize_longest(img, side))[None], gatys.STYLE_LAYERS)
        return np.concatenate([np.asarray(f[k].mean(axis=(1, 2)))[0] for k in gatys.STYLE_LAYERS])

    side = max(x.shape[:2])
    photo, art, got = means(content, side), means(painting, side), means(x, side)
    moved = np.dot(got - photo, art - photo) / np.dot(art - photo, art - photo)
    assert moved >= 0.5, moved


@pytest.mark.slow
@pytest.mark.parametrize("name", ["moments", "mmd-poly"])
def test_sums_over_positions_stay_exact_in_bands(params, name):
    rng = np.random.default_rng(11)
    content = rng.random((208, 32, 3)).astype(np.float32)
    painting = rng.random((64, 64, 3)).astype(np.float32) ** 2
    x = np.clip(content + rng.normal(0, 0.1, content.shape), 0, 1).astype(np.float32)
    cfg = gatys.Config(gatys.Objective(style_loss=name))
    targets_of = jax.jit(gatys.compute_targets, static_argnums=(3, 4))  # one program, not op by op
    targets = targets_of(params, content[None], [painting[None]], (1.0,), cfg)
    banded_targets = targets_of(params, content[None], [painting[None]], (1.0,), cfg.with_band(48))
    for a, b in zip(jax.tree_util.tree_leaves(targets), jax.tree_util.tree_leaves(banded_targets),
                    strict=True):
        # float32 sums over 6,656 positions in another order: measured up to 1.4e-5 of a value (moments)
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=3e-5, atol=1e-6)
    w = gatys.LossWeights().as_arrays(5)
    (value, _), grad = jax.jit(jax.value_and_grad(
        lambda y: gatys.gatys_loss(params, y, targets, w, cfg), has_aux=True))(x[None])
    (bvalue, _), bgrad = jax.jit(
        lambda y: gatys.gatys_value_and_grad_banded(params, y, targets, w, cfg.with_band(48)))(x[None])
    assert float(bvalue) == pytest.approx(float(value), rel=1e-5)
    assert np.abs(np.asarray(bgrad) - np.asarray(grad)).max() <= 1e-5 * np.abs(np.asarray(grad)).max()


@pytest.mark.slow
def test_feature_swd_ratio_is_one_for_the_photo(params, images):
    content, painting = images
    assert metrics.feature_swd_ratio(params, content, content, painting) == pytest.approx(1.0)
    assert metrics.feature_swd(params, painting, painting) == pytest.approx(0.0, abs=1e-4)


def test_style_loss_options(tmp_path, adain_cli_files):
    photo, painting = adain_cli_files / "content.png", adain_cli_files / "style.png"
    r = run("stylize", photo, painting, "-o", str(tmp_path / "a.png"), "--style-loss", "cnnmrf")
    assert r.returncode == 2
    assert_clean_error(r, "--style-loss")
    r = run("stylize", photo, painting, "-o", str(tmp_path / "b.png"), "--style-loss", "swd", "--tile", "64")
    assert r.returncode == 1
    assert_clean_error(r, "not a sum over positions")
    assert not (tmp_path / "a.png").exists() and not (tmp_path / "b.png").exists()
