"""Loss functions for style transfer: pure, jit-able, no state.

Normalisations follow jcjohnson/neural-style (and neural-style-pt), so that its weights carry over:

* ``gram_matrix(F)`` = F^T F / (C * H * W) for features F of shape (N, H, W, C), per image.
* ``content_loss`` = mean squared error between feature maps.
* ``style_loss`` = mean squared error between Gram matrices (mean over the C x C entries).
* ``total_variation`` = sum over pixels and channels of squared (``"l2"``) or absolute (``"l1"``)
  differences between horizontal and vertical neighbours, per image (mean over the batch).
* ``temporal_loss`` = Ruder et al. 2016's: mean over pixels and channels of ``weights * (x - previous)^2``
  (artistic-videos' weighted MSE), ``previous`` an earlier result warped onto this frame.
* ``mean_std`` / ``moment_loss``: per-channel statistics, for AdaIN's style loss (Huang & Belongie 2017).
* ``periodic_peak_loss``: the periodic artefact of upsampling decoders (peaks of the luminance's power
  spectrum at the periods of their x2 upsamplings, :data:`ARTIFACT_PERIODS`), as a training term: the mean
  over the lattice frequencies of ``relu(log(peak power / its neighbourhood's))``, the neighbourhood held
  constant (the term lowers the peak, never raises the rest).  :func:`spectral_lattice` is the geometry it
  shares with :func:`nst_jax.metrics.periodic_artifact`.
* ``relative_distance(x, target)`` = ||x - target||^2 / ||target||^2 per image (mean over the batch): a
  scale-free error, so that layers with large activations do not outweigh the others.  The fast
  networks' training loss and the quality yardstick (:mod:`nst_jax.metrics`) are built from it.

The PyTorch tutorial's Gram divides by N*C*H*W instead and its weights differ accordingly; see the
notes in :mod:`nst_jax.gatys` on how the defaults relate.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

# Gram matrices in full float32 on every backend.  JAX's default on recent NVIDIA GPUs is TensorFloat-32
# (10-bit mantissa inputs) for float32 products; PyTorch computes its Gram matrices (torch.bmm / mm) in
# full float32 by default, and the style loss is a small difference of large Gram matrices, so the same
# products keep it comparable across libraries and backends.  XLA:CPU computes float32 products in float32
# whatever the setting: nothing changes on the CPU.
GRAM_PRECISION = jax.lax.Precision.HIGHEST


def gram_sums(features, weights=None):
    """(N, H, W, C) -> (N, C, C): the unnormalised Gram matrices, a sum over positions (so bands add up);
    products in full float32 (:data:`GRAM_PRECISION`).  ``weights`` (N, H, W, 1): each position's
    ``f f^T`` weighted (a region's guided Gram matrix, Gatys et al. 2017)."""
    n, h, w, c = features.shape
    if weights is not None:
        f = features.reshape(n, h * w, c)
        return jnp.einsum("npc,npd->ncd", f * weights.reshape(n, h * w, 1), f, precision=GRAM_PRECISION)
    if n == 1:  # a plain 2-D product: its gradient is 1.1-1.4x faster on XLA:CPU than the batched one
        f = features.reshape(h * w, c)
        return jnp.matmul(f.T, f, precision=GRAM_PRECISION)[None]
    f = features.reshape(n, h * w, c)
    return jnp.einsum("npc,npd->ncd", f, f, precision=GRAM_PRECISION)


def gram_matrix(features):
    """(N, H, W, C) -> (N, C, C), :func:`gram_sums` normalised by C * H * W."""
    _, h, w, c = features.shape
    return gram_sums(features) / (c * h * w)


def content_loss(features, target):
    """Mean squared error between feature maps."""
    return jnp.mean((features - target) ** 2)


def style_loss(gram, target_gram):
    """Mean squared error between Gram matrices (pass ``gram_matrix`` outputs)."""
    return jnp.mean((gram - target_gram) ** 2)


def total_variation(images, kind: str = "l2"):
    """Total variation of (N, H, W, C) images: summed over pixels and channels, averaged over N."""
    dy = images[:, 1:, :, :] - images[:, :-1, :, :]
    dx = images[:, :, 1:, :] - images[:, :, :-1, :]
    if kind == "l2":
        tv = jnp.sum(dy ** 2, axis=(1, 2, 3)) + jnp.sum(dx ** 2, axis=(1, 2, 3))
    elif kind == "l1":
        tv = jnp.sum(jnp.abs(dy), axis=(1, 2, 3)) + jnp.sum(jnp.abs(dx), axis=(1, 2, 3))
    else:
        raise ValueError(f"total variation kind must be 'l1' or 'l2', not {kind!r}")
    return jnp.mean(tv)


def temporal_loss(images, previous, weights):
    """Ruder et al. 2016's temporal loss: ``sum weights * (images - previous)^2 / D`` with ``D`` the number of
    values (N * H * W * C); ``weights`` (N, H, W, 1): 1 where the flow that moved ``previous`` is trusted."""
    return jnp.mean(weights * (images - previous) ** 2)


def mean_std(features, eps: float = 1e-5):
    """Per-image, per-channel mean and standard deviation over H, W: two (N, C) arrays."""
    mean = jnp.mean(features, axis=(1, 2))
    var = jnp.var(features, axis=(1, 2))
    return mean, jnp.sqrt(var + eps)


def moment_loss(features, target_mean, target_std, eps: float = 1e-5):
    """AdaIN's style loss for one layer: MSE of channel means + MSE of channel standard deviations."""
    mean, std = mean_std(features, eps)
    return jnp.mean((mean - target_mean) ** 2) + jnp.mean((std - target_std) ** 2)


def relative_distances(x, target):
    """||x - target||^2 / ||target||^2 for each image of a batch (all axes but the first): shape ``(N,)``.
    ``target`` may have batch size 1 (one style's Gram matrices against a batch)."""
    axes = tuple(range(1, jnp.ndim(x)))
    num = jnp.sum((x - target) ** 2, axis=axes)
    den = jnp.sum(jnp.asarray(target) ** 2, axis=axes)
    return num / den


def relative_distance(x, target):
    """:func:`relative_distances` averaged over the batch."""
    return jnp.mean(relative_distances(x, target))


ARTIFACT_PERIODS = (2, 4, 8)  # px: the strides of a decoder's x2, x4 and x8 upsamplings
LUMA = (0.299, 0.587, 0.114)  # Y of YIQ (nst_jax.image.rgb_to_yiq)


@functools.lru_cache(maxsize=64)
def spectral_lattice(h: int, w: int, periods: tuple[int, ...] = ARTIFACT_PERIODS):
    """Where a pattern repeating every P px (P in ``periods``) puts its peaks in the 2-D DFT of an ``h x w``
    picture, and what each peak is compared with.  One entry per lattice frequency ``(u / L, v / L)``
    (``L`` the periods' least common multiple, ``(u, v) != 0``) whose period ``L / gcd(u, v, L)`` is one of
    ``periods``: ``(period, core, background)``, flat indices into the ``h * w`` spectrum.

    ``core``: the 3 x 3 bins around the frequency (a window's main lobe; sizes not divisible by L put it
    between bins).  ``background``: the bins of a square of half-width ``r`` (3-8, well inside the
    lattice's spacing) outside its central 5 x 5; on an axis (u or v = 0), where photos of buildings and
    horizons concentrate their energy along a line, the bins of that line (three wide, up to ``3 r``
    either side) outside its central 5, so that a straight edge is not taken for a pattern."""
    lcm = math.lcm(*periods)
    if min(h, w) < 8 * lcm:
        raise ValueError(f"the periodic-artefact measure needs at least {8 * lcm} px on each side, "
                         f"got {h} x {w}")
    spacing = min(h, w) // lcm                           # bins between lattice points
    r = max(3, min(8, spacing // 2 - 3))
    r_line = max(r, min(3 * r, spacing - 4))
    near = np.arange(-1, 2)

    def flat(ys, xs):
        return ((ys % h) * w + xs % w).ravel()

    entries = []
    for u in range(lcm):
        for v in range(lcm):
            period = lcm // math.gcd(u, v, lcm)
            if (u, v) == (0, 0) or period not in periods:
                continue
            cy, cx = round(u * h / lcm), round(v * w / lcm)
            core = flat(cy + near[:, None], cx + near[None, :])
            if u == 0 or v == 0:
                d = np.arange(-r_line, r_line + 1)
                d = d[np.abs(d) > 2]
                background = (flat(cy + near[:, None], cx + d[None, :]) if u == 0
                              else flat(cy + d[:, None], cx + near[None, :]))
            else:
                d = np.arange(-r, r + 1)
                outside = (np.abs(d)[:, None] > 2) | (np.abs(d)[None, :] > 2)
                background = flat(cy + d[:, None], cx + d[None, :])[outside.ravel()]
            entries.append((period, core, background))
    return tuple(entries)


def periodic_hann(n: int) -> np.ndarray:
    """The periodic (DFT-even) Hann window: a pattern at an exact bin leaks into its two neighbours only."""
    return np.hanning(n + 1)[:-1]


def periodic_peak_loss(images, periods: tuple[int, ...] = ARTIFACT_PERIODS):
    """Training term against the periodic artefact of NHWC ``images`` (sides at least ``8 * lcm(periods)``):
    per image, the luminance (mean removed, periodic Hann window), its power spectrum, and at each lattice
    frequency of :func:`spectral_lattice` ``relu(log(sum of the core's power / (9 * mean background
    power)))``, the background under ``stop_gradient``; the mean over lattice frequencies and images.
    About 0 for photos (a peak no higher than its surroundings); a 4-px hatching adds its log excess.

    The gradient is blind to contrast: the ratio is divided by ``E / stop_gradient(E)`` (E the picture's
    whole spectral power, the quotient 1), so scaling the picture's contrast, which scales peak and
    background alike, changes neither the value nor, unlike a background held constant alone, the
    gradient; the term lowers a peak against its surroundings, not the picture's contrast."""
    n, h, w, _ = images.shape
    lum = images @ jnp.asarray(LUMA, images.dtype)
    lum = lum - jnp.mean(lum, axis=(1, 2), keepdims=True)
    window = jnp.asarray(np.outer(periodic_hann(h), periodic_hann(w)), images.dtype)
    spectrum = jnp.fft.fft2(lum * window)
    power = (jnp.real(spectrum) ** 2 + jnp.imag(spectrum) ** 2).reshape(n, h * w)  # |F|^2, smooth at 0
    lattice = spectral_lattice(h, w, tuple(periods))
    core = jnp.asarray(np.stack([c for _, c, _ in lattice]))                  # (K, 9)
    peak = jnp.sum(power[:, core], axis=-1)                                   # (N, K)
    background = jnp.stack([jnp.mean(power[:, b], axis=-1) for _, _, b in lattice], axis=-1)
    background = jax.lax.stop_gradient(9.0 * background) + 1e-12
    energy = jnp.sum(power, axis=-1, keepdims=True) + 1e-12                  # (N, 1)
    contrast = energy / jax.lax.stop_gradient(energy)                         # 1, with E's gradient
    return jnp.mean(jax.nn.relu(jnp.log(peak / (background * contrast) + 1e-12)))
