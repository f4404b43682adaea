"""The quality yardstick: how close a stylised image is to its photo's content and to its painting's style,
measured with the ImageNet VGG-19 of :mod:`nst_jax.vgg` (the features Gatys et al. define style and
content by).  Each distance is defined here once; the quality harness (``experiments/quality.py``) and the
tests use these functions.

* :func:`content_distance`: ``||F(x) - F(photo)||^2 / ||F(photo)||^2`` at ``relu4_2`` (Gatys et al.'s
  content layer); ``x`` and ``photo`` have the same size.  0 = the photo's content exactly.
* :func:`style_distance`: the mean over ``relu1_1 .. relu5_1`` (Gatys et al.'s style layers) of
  ``||G_l(x) - G_l(s)||^2 / ||G_l(s)||^2``, with ``G`` the Gram matrix normalised by C*H*W (so images of
  different sizes compare).  0 = the painting's Gram statistics exactly.

* :func:`feature_swd`: the sliced Wasserstein distance between the distributions of VGG-19 features (every
  position) of ``x`` and of the painting at :data:`STYLE_LAYERS`, along :data:`SWD_PROJECTIONS` fixed random
  directions per layer (ott-jax's exact 1-D transport, for point sets of any sizes), averaged over the layers;
  :func:`feature_swd_ratio` divides it by the photo's own.  It compares whole feature distributions, not one
  statistic of them, so it can judge every style representation of :mod:`nst_jax.style`, Gram included.

* :func:`edge_correlation`: Pearson correlation between the Sobel gradient magnitudes of ``x``'s and the
  photo's luminance.  The two VGG distances do not see blur, streaks or ghosted edges (a blurred picture
  can score closer to the photo at relu4_2 than a crisp one); this does: 1 = the photo's edges where the
  photo has them, lower when edges are smeared, doubled or missing.  Higher is better.

* :func:`periodic_artifact`: the checkerboard a viewer sees at full size and none of the above does: sharp
  peaks of the luminance's magnitude spectrum at the frequencies of a pattern repeating every 2, 4 or 8 px
  (:data:`ARTIFACT_PERIODS`, the strides of a decoder's x2 upsamplings), each peak's height over the median
  of its spectral neighbourhood.  Photos and paintings score 2-5; a faint (3/255) checkerboard of any of
  the periods over a 512 px photo scores over 10.  Lower is better; :func:`periodic_peaks` gives it per
  period.

* :func:`warping_error`: Lai et al. 2018 ("Learning Blind Video Temporal Consistency"): for consecutive
  output frames, the mean squared difference (per value, [0, 1] units) between frame t and frame t-1 warped
  onto it by the input's flow, over the pixels the flow is trusted at; averaged over the pairs.  0 = every
  frame is its predecessor moved with the scene.  Lower is better; ``255 * sqrt`` of it is the RMS
  difference in 8-bit steps.

The two VGG distances are relative squared errors (:func:`nst_jax.losses.relative_distance`): scale-free,
so no layer outweighs the others because its activations are larger.  They are a yardstick, not a verdict: the
pictures are to be looked at next to them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .image import rgb_to_yiq
from .losses import ARTIFACT_PERIODS, gram_matrix, periodic_hann, relative_distance, spectral_lattice
from .vgg import vgg19_features

CONTENT_LAYER = "relu4_2"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")

SWD_PROJECTIONS = 128

__all__ = ["ARTIFACT_PERIODS", "CONTENT_LAYER", "STYLE_LAYERS", "SWD_PROJECTIONS", "content_distance",
           "edge_correlation", "feature_swd", "feature_swd_ratio", "periodic_artifact", "periodic_peaks",
           "style_distance", "style_grams", "warping_error"]


@jax.jit
def style_grams(vgg_params, style):
    """Gram matrices of one ``(H, W, 3)`` painting at :data:`STYLE_LAYERS`: ``{layer: (1, C, C)}``."""
    f = vgg19_features(vgg_params, jnp.asarray(style, jnp.float32)[None], STYLE_LAYERS)
    return {k: gram_matrix(f[k]) for k in STYLE_LAYERS}


@jax.jit
def _style_distance(vgg_params, x, grams):
    f = vgg19_features(vgg_params, x[None], STYLE_LAYERS)
    return sum(relative_distance(gram_matrix(f[k]), grams[k]) for k in STYLE_LAYERS) / len(STYLE_LAYERS)


@jax.jit
def _content_distance(vgg_params, x, photo):
    fx = vgg19_features(vgg_params, x[None], (CONTENT_LAYER,))[CONTENT_LAYER]
    fp = vgg19_features(vgg_params, photo[None], (CONTENT_LAYER,))[CONTENT_LAYER]
    return relative_distance(fx, fp)


def style_distance(vgg_params, x, style) -> float:
    """Mean relative Gram distance of ``x`` (``(H, W, 3)`` in [0, 1]) to the painting ``style`` (an image,
    or its :func:`style_grams`)."""
    grams = style if isinstance(style, dict) else style_grams(vgg_params, style)
    return float(_style_distance(vgg_params, jnp.asarray(x, jnp.float32), grams))


def content_distance(vgg_params, x, photo) -> float:
    """Relative ``relu4_2`` error of ``x`` against ``photo`` (both ``(H, W, 3)`` in [0, 1], same size)."""
    x, photo = np.asarray(x, np.float32), np.asarray(photo, np.float32)
    if x.shape != photo.shape:
        raise ValueError(f"content_distance needs equal shapes, got {x.shape} and {photo.shape}")
    return float(_content_distance(vgg_params, jnp.asarray(x), jnp.asarray(photo)))


def _sobel_magnitude(lum: np.ndarray) -> np.ndarray:
    """|Sobel gradient| of a 2-D float64 array, borders extended by repetition."""
    p = np.pad(lum, 1, mode="edge")
    smooth_rows = p[:-2] + 2 * p[1:-1] + p[2:]        # [1, 2, 1] down the columns
    smooth_cols = p[:, :-2] + 2 * p[:, 1:-1] + p[:, 2:]  # [1, 2, 1] along the rows
    gx = smooth_rows[:, 2:] - smooth_rows[:, :-2]      # [-1, 0, 1] along the rows
    gy = smooth_cols[2:] - smooth_cols[:-2]            # [-1, 0, 1] down the columns
    return np.hypot(gx, gy)


def edge_correlation(x, photo) -> float:
    """Correlation of the Sobel gradient magnitudes of ``x``'s and ``photo``'s luminance (both ``(H, W, 3)``
    in [0, 1], same size), in float64: how much of the photo's edge structure ``x`` keeps in place."""
    x, photo = np.asarray(x, np.float64), np.asarray(photo, np.float64)
    if x.shape != photo.shape:
        raise ValueError(f"edge_correlation needs equal shapes, got {x.shape} and {photo.shape}")
    a, b = (_sobel_magnitude(rgb_to_yiq(v)[..., 0]).ravel() for v in (x, photo))
    a, b = a - a.mean(), b - b.mean()
    denom = np.sqrt((a @ a) * (b @ b))
    return float(a @ b / denom) if denom > 0 else 0.0


@jax.jit
def _feature_swd(vgg_params, x, painting):
    from ott.tools import sliced

    fx = vgg19_features(vgg_params, x[None], STYLE_LAYERS)
    fs = vgg19_features(vgg_params, painting[None], STYLE_LAYERS)
    total = 0.0
    for i, k in enumerate(STYLE_LAYERS):
        c = fx[k].shape[-1]
        d = jax.random.normal(jax.random.fold_in(jax.random.key(0), i), (c, SWD_PROJECTIONS))
        d = d / jnp.linalg.norm(d, axis=0, keepdims=True)
        cost, _ = sliced.sliced_wasserstein(fx[k].reshape(-1, c), fs[k].reshape(-1, c),
                                            proj_fn=lambda z, *_, **__: z @ d)
        total = total + jnp.sqrt(cost)
    return total / len(STYLE_LAYERS)


def feature_swd(vgg_params, x, painting) -> float:
    """Sliced Wasserstein distance (the square root of the mean squared 1-D distance over the projections)
    between ``x``'s and ``painting``'s VGG-19 features, averaged over :data:`STYLE_LAYERS`; both ``(H, W, 3)``
    in [0, 1], of any sizes."""
    return float(_feature_swd(vgg_params, jnp.asarray(x, jnp.float32), jnp.asarray(painting, jnp.float32)))


def feature_swd_ratio(vgg_params, x, photo, painting) -> float:
    """:func:`feature_swd` of ``x`` relative to the photo's own (1: no closer to the painting than the photo;
    0: the painting's feature distributions)."""
    return feature_swd(vgg_params, x, painting) / feature_swd(vgg_params, photo, painting)


def periodic_peaks(x, periods=ARTIFACT_PERIODS) -> dict[int, float]:
    """For each period P (px): the highest peak of ``x``'s luminance spectrum (``x`` ``(H, W, 3)`` in [0, 1])
    at a frequency of period exactly P, over its neighbourhood's median, in float64.

    The spectrum: the luminance with its mean removed, under a periodic Hann window over both axes (no
    cross of leakage from the picture's borders), its DFT's magnitude.  The frequencies, their peaks (the
    highest bin within one of the frequency) and their neighbourhoods are those of
    :func:`nst_jax.losses.spectral_lattice`: a 2-px checkerboard has (1/2, 1/2), a 4-px hatching also 1/4
    and 3/4 along each axis.  1 = no peak; photos and paintings 2-5.  Luminance only: JPEG's
    subsampled chroma has 2-px structure of its own."""
    x = np.asarray(x, np.float64)
    if x.ndim != 3 or x.shape[-1] != 3:
        raise ValueError(f"periodic_peaks needs an (H, W, 3) image, got shape {x.shape}")
    h, w = x.shape[:2]
    lattice = spectral_lattice(h, w, tuple(periods))
    lum = rgb_to_yiq(x)[..., 0]
    window = np.outer(periodic_hann(h), periodic_hann(w))
    mag = np.abs(np.fft.fft2((lum - lum.mean()) * window)).ravel()
    out = {p: 0.0 for p in periods}
    for period, core, background in lattice:
        out[period] = max(out[period], float(mag[core].max() / max(np.median(mag[background]), 1e-300)))
    return out


def periodic_artifact(x, periods=ARTIFACT_PERIODS) -> float:
    """The periodic-artefact score of ``x`` (``(H, W, 3)`` in [0, 1]): the highest of :func:`periodic_peaks`.
    Lower is better; it grows with the picture's size for the same faint pattern (the peak adds up over
    more pixels than the noise), so compare pictures of one size."""
    return max(periodic_peaks(x, periods).values())


def warping_error(frames, flows, weights) -> float:
    """Lai et al. 2018's warping error of output ``frames`` (T of (H, W, 3) in [0, 1]): ``flows[t]`` and
    ``weights[t]`` (for t = 1 .. T-1; entry 0 is not used) are the flow from input frame t to t-1 and its
    (H, W) trust weights (:func:`nst_jax.flow.reliable_flow`, or :func:`nst_jax.flow.pan_flow` for a known
    motion).  Per pair, ``sum w (O_t - warp(O_{t-1}))^2 / (3 sum w)``, in float64; averaged over the pairs."""
    from .flow import warp

    frames = [np.asarray(f, np.float64) for f in frames]
    if len(frames) < 2:
        raise ValueError("the warping error needs at least two frames")
    errors = []
    for t in range(1, len(frames)):
        moved = warp(frames[t - 1].astype(np.float32), flows[t]).astype(np.float64)
        w = np.asarray(weights[t], np.float64)[..., None]
        total = 3.0 * w.sum()
        errors.append(float((w * (frames[t] - moved) ** 2).sum() / total) if total > 0 else 0.0)
    return float(np.mean(errors))
