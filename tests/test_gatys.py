"""Gatys et al.: the objective against the PyTorch reference, and end-to-end runs on real weights
at small sizes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import nst_jax
from experiments import torch_reference as tr
from nst_jax import NSTError, gatys
from nst_jax import image as im
from nst_jax.losses import content_loss, gram_matrix, style_loss

from .conftest import shared_image

# Quantitative claims about real photos and paintings: they need ../shared (CI has it beside the clone).
needs_shared = pytest.mark.skipif(not shared_image("starry_night.jpg").is_file(),
                                  reason="needs ../shared/images (real photo and painting)")


@pytest.fixture(scope="module")
def images(photo):
    content = im.resize(photo, (48, 64))
    p = shared_image("starry_night.jpg")
    if p.is_file():
        style = im.resize_longest(im.load_image(p), 64)
    else:  # strong oriented texture with saturated colours
        yy, xx = np.mgrid[0:64, 0:64] / 64.0
        style = np.stack([np.sin(20 * (xx + yy)) * 0.5 + 0.5, np.cos(14 * xx) * 0.5 + 0.5,
                          0.3 + 0.0 * xx], -1).astype(np.float32)
    return content, style


@jax.jit  # one program a shape, not hundreds of eager operations
def _distances(params, x, content, style):
    cl, sl = gatys.CONTENT_LAYERS, gatys.STYLE_LAYERS
    fx = nst_jax.vgg19_features(params, x[None], cl + sl)
    fc = nst_jax.vgg19_features(params, content[None], cl)
    fs = nst_jax.vgg19_features(params, style[None], sl)
    c = sum(content_loss(fx[n], fc[n]) for n in cl)
    s = sum(style_loss(gram_matrix(fx[n]), gram_matrix(fs[n])) for n in sl)
    return c, s


def distances(params, x, content, style):
    """Content distance (relu4_2 MSE) and style distance (sum of Gram MSEs) -- direct formulas."""
    c, s = _distances(params, *(jnp.asarray(a, jnp.float32) for a in (x, content, style)))
    return float(c), float(s)


def test_objective_matches_pytorch(params, torch_vgg, images):
    content, style = images
    x = np.clip(content + np.random.default_rng(1).normal(0, 0.1, content.shape), 0, 1).astype(np.float32)
    cfg = gatys.Config()
    targets = gatys.compute_targets(params, content[None], [style[None]], [1.0], cfg)
    w = {"content": 5.0, "style": 100.0, "tv": 5e-4, "style_layers": np.ones(5, np.float32)}
    total, terms = gatys.gatys_loss(params, x[None], targets, w, cfg)
    ref = tr.GatysObjective(torch_vgg("max"), tr.nchw(content[None]), tr.nchw(style[None]))
    with torch.no_grad():
        rterms = {k: float(v) for k, v in ref.terms(tr.nchw(x[None])).items()}
    for k in ("content", "style", "tv"):
        assert float(terms[k]) == pytest.approx(rterms[k], rel=1e-4), k


@jax.jit
def _own_vs_flipped(params, x, content):
    f = nst_jax.vgg19_features(params, jnp.stack([x, content, content[::-1]]), ["relu4_2"])["relu4_2"]
    return content_loss(f[0], f[1]) / content_loss(f[0], f[2])


def own_vs_flipped(params, x, content):
    """Content distance (relu4_2 MSE) to the content, over that to the content flipped upside-down:
    the same image statistics in another layout, so < 1 means the layout of the photo survived."""
    return float(_own_vs_flipped(params, *(jnp.asarray(a, jnp.float32) for a in (x, content))))


@pytest.mark.slow
@needs_shared
@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_style_distance_falls_content_stays_bounded(params, images, optimizer):
    content, style = images
    kw = dict(size=64, iters=30, optimizer=optimizer, weights=params,
              learning_rate=0.03 if optimizer == "adam" else None)
    out, report = nst_jax.stylize(content, style, **kw)
    strong, _ = nst_jax.stylize(content, style, content_weight=50.0, **kw)
    assert out.shape == content.shape and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    c0, s0 = distances(params, content, content, style)  # the starting point
    c1, s1 = distances(params, out, content, style)
    c2, s2 = distances(params, strong, content, style)
    r1, r2 = own_vs_flipped(params, out, content), own_vs_flipped(params, strong, content)
    print(f"{optimizer}: style {s0:.3g} -> {s1:.3g} ({s2:.3g} at 10x content weight); "
          f"content {c1:.3g} ({c2:.3g}); own/flipped {r1:.2f} ({r2:.2f})")
    assert s1 < 0.3 * s0, (s0, s1)  # much closer to the style
    assert r1 < 0.9, r1  # the photo's layout survives the default weights
    assert c2 < 0.7 * c1 and r2 < r1 - 0.1, (c1, c2, r1, r2)  # more content weight, more content
    assert s0 > s2 > s1  # ... and less style
    assert report["evaluations"] >= 30 and report["iterations_per_scale"] == 30
    assert set(report["terms"]) == {"content", "style", "tv"}


@pytest.mark.slow
@needs_shared
def test_lbfgsb_stylizes_inside_the_box(params, images):
    """jaxopt's L-BFGS-B: the style moves, the layout survives, and no pixel ever leaves [0, 1] (the
    report counts the unclipped result's values outside the range)."""
    content, style = images
    out, report = nst_jax.stylize(content, style, size=64, iters=30, optimizer="lbfgsb", weights=params)
    c0, s0 = distances(params, content, content, style)
    c1, s1 = distances(params, out, content, style)
    assert s1 < 0.3 * s0, (s0, s1)
    assert own_vs_flipped(params, out, content) < 0.9
    assert report["pixels_outside_range"] == 0.0 and report["optimizer"] == "lbfgsb"
    assert report["evaluations"] > 30  # at least one evaluation per iteration, plus the first


def test_targets_take_lax_conv_unless_a_convolution_is_asked_for(monkeypatch):
    """The targets (one forward pass) compile lax.conv under "auto"; an algorithm asked for, by the
    configuration or by $NST_JAX_CONV, is kept (the parity tests against PyTorch hold either way)."""
    from nst_jax.gatys.objective import targets_config

    monkeypatch.delenv("NST_JAX_CONV", raising=False)
    auto = gatys.Config()
    assert targets_config(auto).execution.conv == "direct"
    assert targets_config(auto).objective == auto.objective and auto.execution.conv == "auto"
    wino = gatys.Config(execution=gatys.Execution(conv="winograd"))
    assert targets_config(wino) is wino
    monkeypatch.setenv("NST_JAX_CONV", "winograd")
    assert targets_config(auto) is auto


def test_second_call_does_not_recompile(params, images):
    content, style = images
    from nst_jax.compile_cache import compile_stats

    before = compile_stats()[0]
    nst_jax.stylize(content, style, size=64, iters=3, weights=params)
    # the first call: the content targets, the style targets, the solver's start and its iterations, and
    # no program for an array made or stacked on the way (~20-50 ms each on every command)
    assert compile_stats()[0] - before <= 4
    before = compile_stats()[0]
    _, report = nst_jax.stylize(content, style, size=64, iters=3, weights=params, content_weight=7.0)
    assert compile_stats()[0] == before  # new weights are data, not a new program
    assert report["compile_seconds"] == 0.0


@pytest.mark.slow
def test_scales_coarse_to_fine(params, images):
    content, style = images
    seen = []
    out, report = nst_jax.stylize(content, style, size=64, iters=10, scales=2, weights=params,
                                  callback=lambda it: seen.append((it.scale, it.iteration)))
    assert out.shape == content.shape
    assert [(s["height"], s["width"]) for s in report["scales"]] == [(24, 32), (48, 64)]
    assert (1, 10) in seen and (2, 10) in seen


def test_preserve_color_luminance_keeps_content_chroma(params, images):
    content, style = images
    out, _ = nst_jax.stylize(content, style, size=64, iters=10, weights=params,
                             preserve_color="luminance")
    iq_out, iq_c = im.rgb_to_yiq(out)[..., 1:], im.rgb_to_yiq(content)[..., 1:]
    plain, _ = nst_jax.stylize(content, style, size=64, iters=10, weights=params)
    assert np.mean(np.abs(iq_out - iq_c)) < 0.01  # clipping to [0,1] may move a few pixels
    assert np.mean(np.abs(im.rgb_to_yiq(plain)[..., 1:] - iq_c)) > 3 * np.mean(np.abs(iq_out - iq_c))


@needs_shared
def test_preserve_color_histogram_matches_content_colours(images):
    content, style = images
    recoloured = im.preserve_color("histogram", content, styles=[style])[0]
    np.testing.assert_allclose(recoloured.reshape(-1, 3).mean(0), content.reshape(-1, 3).mean(0),
                               atol=0.02)
    cov_c = np.cov(content.reshape(-1, 3), rowvar=False)
    cov_r = np.cov(recoloured.reshape(-1, 3), rowvar=False)
    assert np.abs(cov_r - cov_c).max() < 0.25 * np.abs(cov_c).max() + 2e-3


def test_determinism_with_seed(params, images):
    content, style = images
    a, _ = nst_jax.stylize(content, style, size=64, iters=5, init="noise", seed=1, weights=params)
    b, _ = nst_jax.stylize(content, style, size=64, iters=5, init="noise", seed=1, weights=params)
    c, _ = nst_jax.stylize(content, style, size=64, iters=5, init="noise", seed=2, weights=params)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 0.01


def test_style_blend_and_save_every(params, images):
    content, style = images
    saved = []
    out, report = nst_jax.stylize(content, [style, style[:, ::-1]], style_blend=[3, 1], size=64,
                                  iters=6, save_every=3, weights=params,
                                  callback=lambda it: it.image is not None and saved.append(it.iteration))
    assert saved == [3, 6] and out.shape == content.shape


@pytest.mark.parametrize("kwargs,match", [
    (dict(style_blend=[1, 2]), "style blend"),
    (dict(style_layer_weights=[1.0]), "style layer weights"),
    (dict(content_layers=["relu9_9"]), "unknown VGG-19 layer"),
    (dict(size=8), "smaller than"),
    (dict(optimizer="sgd"), "optimizer"),
    (dict(init="plasma"), "init"),
    (dict(iters=0), "iters"),
])
def test_bad_options_are_clear_errors(params, images, kwargs, match):
    content, style = images
    with pytest.raises(NSTError, match=match):
        nst_jax.stylize(content, style, **{"size": 64, "iters": 1, "weights": params, **kwargs})


# --- the objective a band of rows at a time ------------------------------------------------------

@pytest.fixture(scope="module")
def tall_case(params, images):
    """A 304 x 40 image (taller than two halos and a band, so that middle bands are cut on both sides;
    304 = 19 x 16, and band 48 leaves a shorter last band) with a black/white edge on a band boundary
    (row 144 = 3 x 48), against the small painting."""
    _, style = images
    rng = np.random.default_rng(7)
    content = rng.random((304, 40, 3)).astype(np.float32) * 0.3
    content[144:] += 0.7
    x = np.clip(content + rng.normal(0, 0.1, content.shape), 0, 1).astype(np.float32)
    cfg = gatys.Config()
    targets = gatys.compute_targets(params, content[None], [style[None]], [1.0], cfg)
    w = {"content": 5.0, "style": 100.0, "tv": 5e-4,
         "style_layers": np.asarray([1, 0.5, 1, 2, 1], np.float32)}
    return content, style, x, cfg, targets, w


def test_band_halo_covers_the_receptive_reach():
    # relu5_1: 2 + 2x2 + 4x4 + 4x8 + 16 rows of convolutions, 1 + 2 + 4 + 8 of pooling = 85 -> 96 (grid 16)
    assert gatys.band_halo(("relu5_1",)) == (96, 16)
    assert gatys.band_halo(("relu1_1",)) == (1, 1)
    assert gatys.band_halo(("relu2_1",)) == (6, 2)  # 1 + 1 + pool 1 + 2 (conv2_1 at stride 2) = 5 -> 6


@pytest.mark.slow
def test_banded_loss_and_gradient_equal_the_whole_image(params, tall_case, band=48):
    """Relative error at most 1e-5 in float32, for the loss, each term and the gradient."""
    content, style, x, cfg, targets, w = tall_case
    (value, terms), grad = jax.jit(jax.value_and_grad(
        lambda y: gatys.gatys_loss(params, y, targets, w, cfg), has_aux=True))(x[None])
    banded = cfg.with_band(band)
    (bvalue, bterms), bgrad = jax.jit(
        lambda y: gatys.gatys_value_and_grad_banded(params, y, targets, w, banded))(x[None])
    assert float(bvalue) == pytest.approx(float(value), rel=1e-5)
    for k in terms:
        assert float(bterms[k]) == pytest.approx(float(terms[k]), rel=1e-5), k
    err = np.abs(np.asarray(bgrad) - np.asarray(grad))
    assert err.max() <= 1e-5 * np.abs(np.asarray(grad)).max(), err.max()
    # no seam: the rows around the edge on a band boundary (row 144) are as exact as any other
    assert err[0, 136:152].max() <= 1e-5 * np.abs(np.asarray(grad)).max()


def test_banded_objective_matches_pytorch(params, torch_vgg, tall_case):

    content, style, x, cfg, targets, w = tall_case
    (_, terms), _ = gatys.gatys_value_and_grad_banded(params, x[None], targets, w,
                                                      cfg.with_band(48))
    ref = tr.GatysObjective(torch_vgg("max"), tr.nchw(content[None]), tr.nchw(style[None]))
    weights = {"content": 5.0, "style": 100.0, "tv": 5e-4}
    xt = tr.nchw(x[None])
    with torch.no_grad():
        f = ref.vgg(xt, set(ref.cl + ref.sl))
        content_ref = sum(torch.nn.functional.mse_loss(f[n], ref.ct[n]) for n in ref.cl)
        style_ref = sum(float(wl) * torch.nn.functional.mse_loss(tr.gram(f[n]), ref.st[n])
                        for wl, n in zip(w["style_layers"], ref.sl, strict=True))
    assert float(terms["content"]) == pytest.approx(weights["content"] * float(content_ref), rel=1e-4)
    assert float(terms["style"]) == pytest.approx(weights["style"] * float(style_ref), rel=1e-4)


@pytest.mark.slow
def test_stylize_tiled_equals_untiled(params, tall_case):
    """The whole command's path: ``tile=48`` runs banded (reported), ``"none"`` does not, and both end at
    the same loss and picture.  With Adam: L-BFGS's first curvature pair comes from a ~1e-8 step, so it
    amplifies any rounding difference in the gradient (a summation order: bands, devices, threads) about
    a millionfold at its second step (measured: 1e-7 in the gradient, 1.7/255 in the image), which would
    test the algorithm's conditioning, not the bands."""
    content, style, *_ = tall_case
    kw = dict(size=None, iters=4, weights=params, optimizer="adam")
    a, ra = nst_jax.stylize(content, style, tile="none", **kw)
    b, rb = nst_jax.stylize(content, style, tile=48, **kw)
    assert ra["scales"][-1]["band_rows"] == 0 and rb["scales"][-1]["band_rows"] == 48
    assert rb["loss"] == pytest.approx(ra["loss"], rel=1e-5)
    # Adam divides each gradient entry by its running RMS: where a pixel's gradient is ~0, float rounding
    # decides its step (up to the learning rate, 5/255): measured up to 0.23/255 with the synthetic style
    assert np.abs(a - b).max() <= 1 / 255
    assert gatys.band_rows("auto", (304, 40), gatys.CONTENT_LAYERS + gatys.STYLE_LAYERS, 96) == 0
    assert gatys.band_rows(50, (304, 40), gatys.CONTENT_LAYERS + gatys.STYLE_LAYERS, 96) == 64
    assert gatys.band_rows(400, (304, 40), gatys.CONTENT_LAYERS + gatys.STYLE_LAYERS, 96) == 0
    with pytest.raises(NSTError, match="tile must be"):
        nst_jax.stylize(content, style, tile="x", **kw)


@pytest.mark.slow
def test_banded_targets_equal_the_whole_image(params, tall_case):
    """The targets of a tiled run (content features assembled from bands, Gram matrices summed over
    bands; a style taller than a band and one smaller than it, blended) equal the whole images'."""

    content, style, *_ = tall_case
    tall_style = np.ascontiguousarray(np.concatenate([style] * 5, axis=0)[:272, :56])
    styles = [tall_style[None], style[None]]
    cfg = gatys.Config()
    whole = gatys.compute_targets(params, content[None], styles, [0.3, 0.7], cfg)
    banded = gatys.compute_targets(params, content[None], styles, [0.3, 0.7],
                                          cfg.with_band(48))
    for kind in ("content", "style"):
        for k, v in whole[kind].items():
            v, b = np.asarray(v), np.asarray(banded[kind][k])
            assert np.abs(b - v).max() <= 1e-5 * np.abs(v).max(), (kind, k)
