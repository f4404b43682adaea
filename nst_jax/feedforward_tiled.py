"""A fast feed-forward network (:mod:`nst_jax.feedforward`) on a picture too big to hold at once: one layer
at a time over the whole image held in host memory, each layer a band of rows at a time, each instance
normalisation's statistics over the whole image (:mod:`nst_jax.tiling`)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from .nets import EPS, pad_to_multiple, valid_conv

# output pixels per band when tiled: the band's own working memory dominates (the 9x9 convolutions), so
# small bands are better than the tallest that fits (at 4096 x 4096, bands of 128 rows peaked at 5.1 GB,
# bands of 1024 rows at 11.3 GB, the whole image at once 9.4 GB)
TILE_PIXELS = 1 << 19


def _reflect(idx: np.ndarray, n: int) -> np.ndarray:
    """Reflection padding's row indices (``jnp.pad(mode="reflect")``) for rows ``idx`` of ``n``."""
    idx = np.abs(idx)
    return np.where(idx >= n, 2 * (n - 1) - idx, idx)


@functools.partial(jax.jit, static_argnames=("stride", "up"))
def _band_conv(x, kernel, bias, *, stride: int, up: bool):
    """One ConvLayer on a band whose rows (with the row padding or halo) were gathered already: columns
    upsampled if ``up``, reflection-padded, then the VALID convolution over rows and columns."""
    if up:
        x = jnp.repeat(x, 2, axis=2)
    p = kernel.shape[0] // 2
    x = jnp.pad(x, ((0, 0), (0, 0), (p, p), (0, 0)), mode="reflect")
    return valid_conv(x, kernel, stride) + bias


def _conv_stage(x: np.ndarray, layer: dict, stride: int = 1, up: bool = False,
                band_pixels: int = TILE_PIXELS) -> np.ndarray:
    """``ConvLayer`` (after 2x nearest upsampling if ``up``) over a whole activation held in host memory,
    a band of output rows at a time; each band gathers exactly the input rows its outputs see (reflected
    at the image's edges), so every row equals the whole-image convolution's."""
    kernel, bias = layer["kernel"], layer["bias"]
    k = kernel.shape[0]
    p = k // 2
    rows = 2 * x.shape[1] if up else x.shape[1]
    height = (rows + 2 * p - k) // stride + 1
    width = 2 * x.shape[2] if up else (x.shape[2] + 2 * p - k) // stride + 1
    n = min(height, max(8, band_pixels // max(1, width)))
    out = None
    starts = list(range(0, height - n, n)) + [height - n]  # equal bands: one compiled shape per layer
    for a in starts:
        if up:
            idx = _reflect(np.arange(a - p, a + n + p), rows) // 2
        else:
            idx = _reflect(np.arange(a * stride - p, (a + n - 1) * stride + k - p), rows)
        y = np.asarray(_band_conv(jnp.asarray(x[:, idx]), kernel, bias, stride=stride, up=up))
        if out is None:
            out = np.empty((x.shape[0], height) + y.shape[2:], np.float32)
        out[:, a:a + n] = y
    return out


def _norm_stage(x: np.ndarray, scale, bias, relu: bool, skip: np.ndarray | None = None,
                band_pixels: int = TILE_PIXELS) -> np.ndarray:
    """Instance normalisation of a whole activation in place, its statistics over every row (float64),
    then ReLU or a residual sum, a band at a time."""
    n = max(1, band_pixels // max(1, x.shape[2]))
    count = x.shape[1] * x.shape[2]
    total = sum(x[:, a:a + n].sum(axis=(1, 2), dtype=np.float64) for a in range(0, x.shape[1], n))
    mean = total / count
    sq = sum(((x[:, a:a + n] - mean[:, None, None]) ** 2).sum(axis=(1, 2)) for a in range(0, x.shape[1], n))
    var = sq / count
    gain = (np.asarray(scale, np.float64) / np.sqrt(var + EPS))[:, None, None].astype(np.float32)
    shift = (np.asarray(bias, np.float64) - mean * gain[:, 0, 0])[:, None, None].astype(np.float32)
    for a in range(0, x.shape[1], n):
        band = x[:, a:a + n] * gain + shift
        if relu:
            np.maximum(band, 0.0, out=band)
        if skip is not None:
            band += skip[:, a:a + n]
        x[:, a:a + n] = band
    return x


def apply_net_tiled(params, images, style=None, band_rows: int | None = None) -> np.ndarray:
    """:func:`apply_net` one layer at a time over the whole image (held in host memory), each layer a band
    of rows at a time, each instance normalisation's statistics over the whole image: the same result
    (up to float rounding) with a peak of about two layers' activations instead of the whole network's.
    ``band_rows``: rows of the image per band (lower-resolution layers take as many pixels per band);
    default: about ``TILE_PIXELS`` pixels."""
    from .feedforward import MULTIPLE, num_styles

    h, w = images.shape[1:3]
    x = np.asarray(pad_to_multiple(jnp.asarray(images, jnp.float32), MULTIPLE))
    px = TILE_PIXELS if band_rows is None else max(1, band_rows) * x.shape[2]
    conv = functools.partial(_conv_stage, band_pixels=px)
    mix = None
    if num_styles(params):
        mix = np.broadcast_to(np.asarray(style, np.float32), (len(x), num_styles(params)))

    def norm(p, y, relu=True, skip=None):
        scale, bias = np.asarray(p["scale"]), np.asarray(p["bias"])
        if mix is not None:  # one (scale, bias) per image: the mix of its styles'
            scale, bias = mix @ scale, mix @ bias
        shape = (len(y), scale.shape[-1])
        return _norm_stage(y, np.broadcast_to(scale, shape), np.broadcast_to(bias, shape), relu, skip, px)

    y = norm(params["in1"], conv(x, params["conv1"]))
    y = norm(params["in2"], conv(y, params["conv2"], stride=2))
    y = norm(params["in3"], conv(y, params["conv3"], stride=2))
    for i in range(1, 6):
        r = params[f"res{i}"]
        z = norm(r["in1"], conv(y, r["conv1"]))
        y = norm(r["in2"], conv(z, r["conv2"]), relu=False, skip=y)
    y = norm(params["in4"], conv(y, params["up1"], up=True))
    y = norm(params["in5"], conv(y, params["up2"], up=True))
    return conv(y, params["out"])[:, :h, :w]
