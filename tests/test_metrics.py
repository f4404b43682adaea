"""The quality yardstick (nst_jax.metrics) against float64 NumPy written out from the VGG-19 features."""

import numpy as np
import pytest

from nst_jax import metrics
from nst_jax.vgg import vgg19_features


def _np_gram(f):
    f = np.asarray(f, np.float64)[0]
    h, w, c = f.shape
    m = f.reshape(h * w, c)
    return m.T @ m / (c * h * w)


@pytest.mark.slow
def test_distances_match_float64_numpy(params):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:40, 0:48] / 40.0
    photo = np.stack([np.sin(5 * xx) * 0.5 + 0.5, yy, (xx * yy) % 1.0], -1).astype(np.float32)
    x = np.clip(photo + rng.normal(0, 0.1, photo.shape), 0, 1).astype(np.float32)
    style = rng.random((36, 44, 3)).astype(np.float32) ** 2

    f = {k: vgg19_features(params, v[None], metrics.STYLE_LAYERS + (metrics.CONTENT_LAYER,))
         for k, v in (("x", x), ("photo", photo), ("style", style))}
    c = metrics.CONTENT_LAYER
    a, b = np.asarray(f["x"][c], np.float64), np.asarray(f["photo"][c], np.float64)
    np.testing.assert_allclose(metrics.content_distance(params, x, photo),
                               np.sum((a - b) ** 2) / np.sum(b ** 2), rtol=1e-4)
    ref = np.mean([np.sum((_np_gram(f["x"][k]) - _np_gram(f["style"][k])) ** 2)
                   / np.sum(_np_gram(f["style"][k]) ** 2) for k in metrics.STYLE_LAYERS])
    np.testing.assert_allclose(metrics.style_distance(params, x, style), ref, rtol=1e-4)
    # the precomputed Gram matrices give the same number; an image is at distance 0 from itself
    grams = metrics.style_grams(params, style)
    assert metrics.style_distance(params, x, grams) == pytest.approx(ref, rel=1e-4)
    assert metrics.style_distance(params, style, style) == pytest.approx(0.0, abs=1e-6)
    assert metrics.content_distance(params, photo, photo) == 0.0
    with pytest.raises(ValueError, match="equal shapes"):
        metrics.content_distance(params, x[:32], photo)


def test_edge_correlation_matches_scipy_and_sees_blur():
    """Against scipy.ndimage.sobel (an independent Sobel, borders 'nearest') in float64; 1 for the photo
    itself and for any brightness/contrast change of it; a blurred or shifted copy scores lower."""
    from scipy import ndimage

    rng = np.random.default_rng(3)
    photo = np.zeros((48, 64, 3))
    photo[10:30, 12:40] = [0.9, 0.5, 0.2]  # a block with sharp edges, and noise
    photo = np.clip(photo + 0.05 * rng.random(photo.shape), 0, 1)
    out = np.clip(photo[..., ::-1] * 0.7 + 0.1 * rng.random(photo.shape), 0, 1)

    def ref(x, p):
        mags = []
        for img in (x, p):
            lum = img @ np.array([0.299, 0.587, 0.114])
            mags.append(np.hypot(ndimage.sobel(lum, 0, mode="nearest"),
                                 ndimage.sobel(lum, 1, mode="nearest")))
        return np.corrcoef(mags[0].ravel(), mags[1].ravel())[0, 1]

    assert metrics.edge_correlation(out, photo) == pytest.approx(ref(out, photo), abs=1e-12)
    assert metrics.edge_correlation(photo, photo) == pytest.approx(1.0, abs=1e-12)
    assert metrics.edge_correlation(0.5 * photo + 0.2, photo) == pytest.approx(1.0, abs=1e-12)
    blurred = ndimage.uniform_filter(photo, size=(5, 5, 1), mode="nearest")
    shifted = np.roll(photo, 3, axis=1)
    assert metrics.edge_correlation(blurred, photo) < 0.9
    assert metrics.edge_correlation(shifted, photo) < 0.7  # the vertical edges move off their place
    with pytest.raises(ValueError, match="equal shapes"):
        metrics.edge_correlation(photo[:40], photo)


def _cosine_over_noise(amplitude, freq, sigma=0.05, size=256, seed=0):
    """A grey picture: 0.5 + amplitude cos(2 pi (fy y + fx x)) + white noise of std sigma (all channels equal,
    so the luminance is the value itself)."""
    yy, xx = np.mgrid[:size, :size]
    v = 0.5 + amplitude * np.cos(2 * np.pi * (freq[0] * yy + freq[1] * xx))
    v = v + np.random.default_rng(seed).normal(0, sigma, v.shape)
    return np.repeat(v[..., None], 3, -1)


@pytest.mark.parametrize("freq,period", [((0.0, 0.25), 4), ((0.25, 0.25), 4), ((0.5, 0.5), 2),
                                         ((0.125, 0.375), 8)])
def test_periodic_peaks_closed_form(freq, period):
    """A cosine of amplitude A at a lattice frequency over white noise of std s, size N, Hann window w:
    the peak is A/2 (sum w)^2 (half the cosine's energy at each of +-f; at (1/2, 1/2) the two coincide: A),
    the neighbourhood's median is that of a Rayleigh variable, s sqrt(sum w^2)^2 sqrt(ln 2)."""
    n, a, s = 256, 0.02, 0.05
    w = np.hanning(n + 1)[:-1]  # periodic
    coincide = all(f in (0.0, 0.5) for f in freq)
    peak = (a if coincide else a / 2) * w.sum() ** 2
    median = s * (w @ w) * np.sqrt(np.log(2))
    peaks = metrics.periodic_peaks(_cosine_over_noise(a, freq, s, n))
    assert peaks[period] == pytest.approx(peak / median, rel=0.15)
    assert all(v < 5 for p, v in peaks.items() if p != period), peaks  # the other periods see noise


def _photo_512(path):
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        k = 512 / max(im.size)
        im = im.resize((round(im.width * k), round(im.height * k)), Image.LANCZOS)
        return np.asarray(im, np.float64) / 255


def test_periodic_artifact_fires_on_checkerboards_not_on_photos():
    from .conftest import shared_image

    paths = [shared_image(n) for n in ("tubingen.jpg", "golden_gate.jpg", "hoovertowernight.jpg",
                                       "starry_night.jpg", "the_scream.jpg")]
    paths = [p for p in paths if p.is_file()]
    if not paths:
        pytest.skip("../shared/images is not there")
    for p in paths:
        x = _photo_512(p)
        assert metrics.periodic_artifact(x) < 6, p.name          # photos and paintings: no peak
        if p.name in ("starry_night.jpg", "the_scream.jpg"):
            continue
        yy, xx = np.mgrid[:x.shape[0], :x.shape[1]]
        for period in (2, 4, 8):                                 # a 3/255 square-wave checkerboard
            board = ((yy // (period // 2) + xx // (period // 2)) % 2 - 0.5) * 3 / 255
            peaks = metrics.periodic_peaks(np.clip(x + board[..., None], 0, 1))
            assert peaks[period] > 10, (p.name, period, peaks)
    # clean: noise only, at a size that is not a multiple of 8
    smooth = _cosine_over_noise(0.0, (0, 0), sigma=0.02, size=300)
    assert metrics.periodic_artifact(smooth) < 5
    with pytest.raises(ValueError, match="at least 64 px"):
        metrics.periodic_artifact(np.zeros((48, 100, 3)))
