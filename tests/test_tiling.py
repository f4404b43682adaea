"""Tiled inference (nst_jax.tiling): a band of rows at a time gives the whole image's result."""

import numpy as np
import pytest

from nst_jax import adain, tiling
from nst_jax.errors import NSTError


def test_bands_cover_every_row_once_with_clipped_halos():
    got = tiling.bands(100, 32, 8, align=8)
    assert [(a, b) for a, b, _, _ in got] == [(0, 32), (32, 64), (64, 96), (96, 100)]
    assert [(lo, hi) for _, _, lo, hi in got] == [(0, 40), (24, 72), (56, 100), (88, 100)]
    with pytest.raises(NSTError, match="multiples of 8"):
        tiling.bands(100, 30, 8, align=8)
    for text, value in (("auto", "auto"), ("none", "none"), ("256", 256)):
        assert tiling.parse_tile(text) == value
    for bad in ("0", "big", "-5"):
        with pytest.raises(NSTError, match="tile"):
            tiling.parse_tile(bad)
    assert tiling.needs_tiling(64, 1, 1.0) and not tiling.needs_tiling("none", 10 ** 12, 1e6)
    assert tiling.needs_tiling("auto", 10 ** 15, 1e3) and not tiling.needs_tiling("auto", 16, 1.0)


@pytest.fixture(scope="module")
def decoder():
    return adain.load_decoder()[0]


def _edge_image(h=120, w=88, edge_row=40):
    """Smooth noise with a black/white step exactly on a band boundary (row ``edge_row``)."""
    rng = np.random.default_rng(4)
    img = 0.15 + 0.1 * rng.random((h, w, 3)).astype(np.float32)
    img[edge_row:] += 0.7
    return np.clip(img, 0, 1)


@pytest.mark.slow
@pytest.mark.parametrize("band", [8, 40, 64])
def test_tiled_adain_equals_the_whole_image(params, decoder, band):
    content = _edge_image()
    style = np.random.default_rng(9).random((64, 48, 3)).astype(np.float32) ** 2
    kw = dict(size=None, style_size=None, decoder=decoder, weights=params)
    whole, rep = adain.stylize(content, style, tile="none", **kw)
    tiled, rep_t = adain.stylize(content, style, tile=band, **kw)
    assert rep["tile_rows"] is None and rep_t["tile_rows"] == band
    # exact up to float rounding (1/255 would do; we see ~1e-6), also on the rows around the
    # band boundary that the black/white step lies on: no seam
    assert np.abs(tiled - whole).max() < 1e-3 / 255
    assert np.abs(tiled[32:48] - whole[32:48]).max() < 1e-3 / 255


def test_tiled_adain_keeps_blends_masks_and_alpha(params, decoder):
    content = _edge_image(96, 72)
    styles = [np.random.default_rng(k).random((40, 40, 3)).astype(np.float32) ** (k + 1) for k in range(2)]
    mask = np.zeros((96, 72), np.float32)
    mask[:, 36:] = 1
    kw = dict(size=None, style_size=None, decoder=decoder, weights=params, alpha=0.6, mask=mask)
    whole, _ = adain.stylize(content, styles, tile="none", **kw)
    tiled, _ = adain.stylize(content, styles, tile=16, **kw)
    assert np.abs(tiled - whole).max() < 1e-3 / 255


@pytest.mark.slow
@pytest.mark.parametrize("conditional", [False, True])
def test_tiled_fast_network_equals_the_whole_image(conditional):
    """One layer at a time, a band of rows at a time, instance-norm statistics over the whole image: the
    whole network's result, also across a black/white step on a band boundary (row 40)."""
    import jax
    import jax.numpy as jnp

    from nst_jax import feedforward as F

    params = F.init_net(jax.random.key(6), 3 if conditional else 0)
    params = jax.tree_util.tree_map(  # away from the identity init, so that every layer matters
        lambda a: a + 0.2 * jax.random.normal(jax.random.key(a.size), a.shape), params)
    images = np.stack([_edge_image(), _edge_image()[::-1]])
    mix = np.array([0.2, 0.0, 0.8], np.float32) if conditional else None
    whole = np.asarray(F.apply_net(params, jnp.asarray(images), mix))
    for rows in (40, 8):
        tiled = F.apply_net_tiled(params, images, mix, band_rows=rows)
        scale = np.abs(whole).max()
        assert np.abs(tiled - whole).max() < 1e-5 * scale, (rows, np.abs(tiled - whole).max(), scale)
        assert np.abs(tiled[:, 32:48] - whole[:, 32:48]).max() < 1e-5 * scale
