"""Spatial control (nst_jax.regions, Gatys et al. 2017) against independent references: the receptive-field
guides against the network itself probed with noise (the paper's own way of finding them), the guided
statistics and the regions' style term against float64 NumPy, one region covering the picture against the
plain objective, bands against the whole image; the bad settings refused."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nst_jax import gatys, regions, style
from nst_jax import image as im
from nst_jax.errors import NSTError
from nst_jax.vgg import vgg19_features

LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")


def halves(h, w, soft=0):
    """Left half 1, right half 0, a linear ramp ``soft`` px wide between."""
    m = np.zeros((h, w), np.float32)
    m[:, : w // 2] = 1.0
    if soft:
        m[:, w // 2 - soft // 2: w // 2 + soft // 2] = np.linspace(1, 0, 2 * (soft // 2))
    return m


def blob(h, w):
    yy, xx = np.mgrid[0:h, 0:w]
    return (((yy - 0.4 * h) / (0.3 * h)) ** 2 + ((xx - 0.55 * w) / (0.35 * w)) ** 2 < 1).astype(np.float32)


def test_receptive_field_guides_are_what_the_network_sees(params):
    """The paper finds its "inside" and "all" guides by probing the network: noise outside the region (the
    positions whose features do not vary see only the region), or inside it (those that vary see some of it).
    Our guides follow the network's structure instead; the probe must agree, position by position."""
    h, w = 72, 88
    mask = blob(h, w)
    # VGG-19's structure as a positive linear network (absolute weights, no biases, no input normalisation,
    # average pooling): a position's features are positive exactly where its receptive field meets a
    # positive pixel, and exactly zero elsewhere
    positive = {k: {"kernel": jnp.abs(v["kernel"]), "bias": jnp.zeros_like(v["bias"])} if k.startswith("conv")
                else v for k, v in params.items()}
    positive["preprocess"] = {"mean": jnp.zeros(3), "std": jnp.ones(3)}
    probe = jax.jit(lambda x: vgg19_features(positive, x, LAYERS, "avg"))

    def varies(where):
        f = probe(jnp.asarray(np.repeat(where[None, :, :, None], 3, -1)))
        return {k: np.asarray(v[0].max(-1)) > 0 for k, v in f.items()}

    inside, touches = varies(1.0 - mask), varies(mask)
    g_in, g_all = regions.guides(mask[None], LAYERS, "inside"), regions.guides(mask[None], LAYERS, "all")
    for k in LAYERS:
        assert g_in[k].shape[1:] == inside[k].shape
        np.testing.assert_array_equal(g_in[k][0] > 0.5, ~inside[k], err_msg=k)
        np.testing.assert_array_equal(g_all[k][0] > 0.5, touches[k], err_msg=k)
    # deeper layers see farther: "inside" shrinks and "all" grows with depth; "simple" keeps the area
    frac = {m: [regions.guides(mask[None], LAYERS, m)[k].mean() for k in LAYERS] for m in regions.MASK_MODES}
    assert frac["inside"] == sorted(frac["inside"], reverse=True) and frac["all"] == sorted(frac["all"])
    np.testing.assert_allclose(frac["simple"], mask.mean(), atol=0.02)


def test_guided_statistics_against_float64():
    rng = np.random.default_rng(1)
    f = np.maximum(rng.normal(0.2, 1.0, (1, 6, 7, 5)), 0).astype(np.float32)
    wgt = rng.uniform(0, 1, (1, 6, 7, 1)).astype(np.float32)
    x, p = np.asarray(f, np.float64).reshape(-1, 5), np.asarray(wgt, np.float64).reshape(-1)
    gram = (x * p[:, None]).T @ x / (5 * p.sum())
    s = style.GRAM.sums
    np.testing.assert_allclose(np.asarray(s.finish(s.weighted(jnp.asarray(f), jnp.asarray(wgt)), p.sum()))[0],
                               gram, rtol=1e-5)
    mean = (p[:, None] * x).sum(0) / p.sum()
    std = np.sqrt((p[:, None] * (x - mean) ** 2).sum(0) / p.sum() + style.EPS)
    m = style.MOMENTS.sums
    got = m.finish(m.weighted(jnp.asarray(f), jnp.asarray(wgt)), p.sum())
    np.testing.assert_allclose(np.asarray(got[0])[0], mean, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(got[1])[0], std, rtol=1e-4)
    # weights of one are the plain statistic, for every representation that takes regions
    for rep in (style.GRAM, style.MOMENTS, style.MMD_POLY):
        ones = rep.sums.weighted(jnp.asarray(f), jnp.ones_like(jnp.asarray(wgt)))
        for a, b in zip(jax.tree_util.tree_leaves(ones), jax.tree_util.tree_leaves(rep.sums.summarise(f)),
                        strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5)


def _problem(params, masks, styles, style_masks=None, mode="simple", size=(48, 64), name="gram",
             content_loss="feature", content_weight=0.0):
    rng = np.random.default_rng(4)
    content = rng.random(size + (3,)).astype(np.float32)
    method = gatys.Gatys(weights=params, size=max(size), masks=masks, style_masks=style_masks, mask_mode=mode,
                         style_loss=name, content_loss=content_loss, content_weight=content_weight,
                         tv_weight=0.0, iters=1)
    job = method.prepare(0, gatys.Picture(content, styles))
    targets = method.targets(content[None], [job], job.shape)
    w = gatys.stack([gatys.LossWeights(content_weight, 1.0, 0.0).as_arrays(5)])
    one = lambda t: jax.tree_util.tree_map(lambda v: v[0], t)  # noqa: E731  the picture's own
    x = np.clip(content + rng.normal(0, 0.2, content.shape), 0, 1).astype(np.float32)[None]
    return method, one(targets), one(w), x


def test_regions_style_term_against_float64(params):
    """Two regions, one of them taking only part of its painting: the style term is the mean over the
    regions of the squared Gram distance, each region's Gram matrix over its own weighted positions
    (float64 NumPy on the network's features), its painting's over the part its style mask marks."""
    rng = np.random.default_rng(5)
    a, b = rng.random((40, 56, 3)).astype(np.float32), rng.random((64, 48, 3)).astype(np.float32) ** 2
    mask = halves(48, 64, soft=8)
    a_mask = blob(40, 56)
    method, targets, w, x = _problem(params, mask, [a, b], [a_mask, None])
    cfg = method.cfg
    value, terms = gatys.gatys_loss(params, jnp.asarray(x), targets, w, cfg)
    feats = lambda img: {k: np.asarray(v, np.float64)[0] for k, v in  # noqa: E731
                         vgg19_features(params, jnp.asarray(img)[None], gatys.STYLE_LAYERS, "max").items()}
    a, b = im.resize_longest(a, 64), im.resize_longest(b, 64)  # the style images at the picture's size
    fx, fa, fb = feats(x[0]), feats(a), feats(b)
    gx = regions.guides(np.stack([mask, 1 - mask]), gatys.STYLE_LAYERS, "simple")
    ga = regions.guides(regions.resize_mask(a_mask, a.shape[:2])[None], gatys.STYLE_LAYERS, "simple")

    def gram(f, p):
        x2 = f.reshape(-1, f.shape[-1])
        p = p.reshape(-1)
        return (x2 * p[:, None]).T @ x2 / (x2.shape[1] * p.sum())

    expected = 0.0
    for k in gatys.STYLE_LAYERS:
        ta = gram(fa[k], ga[k][0])
        tb = gram(fb[k], np.ones(fb[k].shape[:2]))
        per = [np.mean((gram(fx[k], gx[k][r]) - t) ** 2) for r, t in enumerate((ta, tb))]
        expected += np.mean(per)
    assert float(terms["style"]) == pytest.approx(expected, rel=2e-4)


@pytest.mark.slow
def test_one_region_covering_the_picture_is_the_plain_objective(params):
    rng = np.random.default_rng(6)
    painting = rng.random((56, 56, 3)).astype(np.float32)
    _, t1, w, x = _problem(params, [np.ones((48, 64), np.float32)], [painting])
    plain, t0, _, _ = _problem(params, None, painting)
    cfg1 = gatys.Config(gatys.Objective(regions=1))
    vg = jax.jit(lambda t, c: jax.value_and_grad(lambda y: gatys.gatys_loss(params, y, t, w, c)[0])(
        jnp.asarray(x)), static_argnums=1)
    v1, g1 = vg(t1, cfg1)
    v0, g0 = vg(t0, plain.cfg)
    assert float(v1) == pytest.approx(float(v0), rel=1e-5)
    assert np.abs(np.asarray(g1 - g0)).max() <= 1e-5 * np.abs(np.asarray(g0)).max()


@pytest.mark.slow
# one case: the guides that differ most from the plain ones (inside), the default representation, and the
# content term whose maps the bands assemble (the other modes' guides and representations' sums are tested
# whole above and in tests/test_style.py by bands)
@pytest.mark.parametrize("name,mode,content_loss", [("gram", "inside", "self-similarity")])
def test_regions_stay_exact_in_bands(params, name, mode, content_loss):
    """Regions (and STROTSS's content term, on the content maps the bands assemble) by bands of rows: the
    whole image's loss and gradient."""
    rng = np.random.default_rng(7)
    a, b = rng.random((56, 40, 3)).astype(np.float32), rng.random((48, 48, 3)).astype(np.float32)
    mask = blob(96, 48)
    method, targets, w, x = _problem(params, mask, [a, b], [None, halves(48, 48)], mode, size=(96, 48),
                                     name=name, content_loss=content_loss,
                                     content_weight=1e8 if content_loss == "self-similarity" else 1.0)
    cfg = method.cfg
    (value, _), grad = jax.jit(jax.value_and_grad(
        lambda y: gatys.gatys_loss(params, y, targets, w, cfg), has_aux=True))(jnp.asarray(x))
    (bvalue, _), bgrad = jax.jit(
        lambda y: gatys.gatys_value_and_grad_banded(params, y, targets, w, cfg.with_band(32)))(jnp.asarray(x))
    assert float(bvalue) == pytest.approx(float(value), rel=1e-5)
    assert np.abs(np.asarray(bgrad) - np.asarray(grad)).max() <= 1e-5 * np.abs(np.asarray(grad)).max()
    # the style images' own regions, by bands
    banded_targets = method.targets(x, [method.prepare(0, gatys.Picture(x[0], [a, b]))], (96, 48),
                                    cfg.with_band(16))
    for k in gatys.STYLE_LAYERS:
        for u, v in zip(jax.tree_util.tree_leaves(banded_targets["style"][k]),
                        jax.tree_util.tree_leaves(targets["style"][k]), strict=True):
            np.testing.assert_allclose(np.asarray(u)[0], np.asarray(v), rtol=3e-5, atol=1e-6)


@pytest.mark.parametrize("settings,match", [
    ({"masks": np.zeros((8, 8))}, "all black"),
    ({"masks": np.ones((8, 8))}, "all white"),
    ({"masks": [np.ones((8, 8)), np.zeros((8, 8))]}, "mask 2 is all black"),
    ({"masks": [np.ones((8, 8)), np.ones((9, 8))]}, "differ in size"),
    ({"masks": np.full((8, 8), 2.0)}, r"in \[0, 1\]"),
    ({"masks": np.ones((2, 8, 8, 3, 1))}, "2-D"),
    ({"masks": halves(8, 8), "style_loss": "swd"}, "sum over positions"),
    ({"masks": halves(8, 8), "style_blend": (1, 1)}, "no style blend"),
    ({"masks": halves(8, 8), "mask_mode": "outside"}, "mask mode"),
    ({"style_masks": [None, halves(8, 8)]}, "go with masks"),
])
def test_bad_region_settings(settings, match):
    with pytest.raises(NSTError, match=match):
        gatys.StylizeConfig(**settings)


def test_regions_and_styles_must_match(params):
    content, s = np.zeros((32, 32, 3), np.float32), np.zeros((32, 32, 3), np.float32)
    cases = [({"masks": halves(32, 32)}, [s], "one mask places two styles"),
             ({"masks": [halves(32, 32)] * 2}, [s, s, s], "2 masks for 3 style images"),
             ({"masks": halves(32, 32), "style_masks": [None]}, [s, s], "1 style masks for 2")]
    for settings, styles, match in cases:
        method = gatys.Gatys(weights=params, size=32, iters=1, **settings)
        with pytest.raises(NSTError, match=match):
            method.prepare(0, gatys.Picture(content, styles))


def test_mask_command_line(adain_cli_files, tmp_path):
    """`nst-jax stylize photo a b --mask m`: a picture and a report naming the mask; a mask of another size is
    resized (said once); bad masks are one clear line, exit 1, nothing written."""
    import json

    from PIL import Image

    from .helpers import assert_clean_error, run, run_here

    d = adain_cli_files
    c, a, b, m = d / "content.png", d / "style.png", d / "style2.png", d / "mask.png"
    Image.fromarray(np.zeros((24, 20), np.uint8)).save(tmp_path / "black.png")
    Image.fromarray(np.full((24, 20), 255, np.uint8)).save(tmp_path / "white.png")
    Image.fromarray((halves(30, 20) * 255).astype(np.uint8)).save(tmp_path / "other.png")
    out = tmp_path / "o.png"
    r = run_here("stylize", c, a, b, "--mask", tmp_path / "other.png", "-o", out, "--size", "48",
                 "--iters", "2", "--report", tmp_path / "r.json")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("resized to each content's size") == 1
    assert Image.open(out).size == (40, 48)
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["mask_files"] == [str(tmp_path / "other.png")]
    assert report["options"]["mask_mode"] == "simple"
    bad = [((a, b, "--mask", tmp_path / "black.png"), "all black"),
           ((a, b, "--mask", tmp_path / "white.png"), "all white"),
           ((a, b, "--mask", d / "text.jpg"), "text.jpg"),
           ((a, "--mask", m), "one mask places two styles"),
           ((a, b, a, "--mask", m, "--mask", m), "2 masks for 3 style images"),
           ((a, b, "--mask", m, "--style-loss", "swd"), "sum over positions"),
           ((a, b, "--mask", m, "--style-blend", "1,2"), "no style blend"),
           ((a, b, "--style-mask", m), "go with masks"),
           ((a, b, "--mask", m, "--style-mask", m), "1 style masks for 2"),
           ((a, b, "--mask", m, "--mask-mode", "edge"), "invalid choice")]
    for k, (args, match) in enumerate(bad):
        target = tmp_path / f"bad{k}.png"
        command = run if k == 0 else run_here  # one case as a real process
        assert_clean_error(command("stylize", c, *args, "-o", target, "--size", "48", "--iters", "2"), match)
        assert not target.exists()
    # a mask cannot be the output
    assert_clean_error(run_here("stylize", c, a, b, "--mask", m, "-o", m), "mask.png")


@pytest.mark.slow
def test_video_takes_one_mask_for_the_clip(adain_cli_files, tmp_path):
    """`nst-jax video frames a b --mask m`: Ruder et al.'s frames, each with two styles in their regions."""
    from PIL import Image

    from .helpers import run_here

    d = adain_cli_files
    frames = tmp_path / "frames"
    frames.mkdir()
    base = np.asarray(Image.open(d / "content.png"), np.float32) / 255.0
    for t in range(3):
        Image.fromarray((np.roll(base, 2 * t, axis=1) * 255).astype(np.uint8)).save(frames / f"{t:02d}.png")
    out = tmp_path / "out"
    r = run_here("video", frames, d / "style.png", d / "style2.png", "--mask", d / "mask.png", "-o", out,
                 "--iters", "3", "--first-iters", "3", "--quiet")
    assert r.returncode == 0, r.stderr
    assert len(list(out.glob("*.png"))) == 3
