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
* ``relative_distance(x, target)`` = ||x - target||^2 / ||target||^2 per image (mean over the batch): a
  scale-free error, so that layers with large activations do not outweigh the others.  The fast
  networks' training loss and the quality yardstick (:mod:`nst_jax.metrics`) are built from it.

The PyTorch tutorial's Gram divides by N*C*H*W instead and its weights differ accordingly; see the
notes in :mod:`nst_jax.gatys` on how the defaults relate.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

# Gram matrices in full float32 on every backend.  JAX's default on recent NVIDIA GPUs is TensorFloat-32
# (10-bit mantissa inputs) for float32 products; PyTorch computes its Gram matrices (torch.bmm / mm) in
# full float32 by default, and the style loss is a small difference of large Gram matrices, so the same
# products keep it comparable across libraries and backends.  XLA:CPU computes float32 products in float32
# whatever the setting: nothing changes on the CPU.
GRAM_PRECISION = jax.lax.Precision.HIGHEST


def gram_sums(features):
    """(N, H, W, C) -> (N, C, C): the unnormalised Gram matrices, a sum over positions (so bands add up);
    products in full float32 (:data:`GRAM_PRECISION`)."""
    n, h, w, c = features.shape
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
