"""A pure-function VGG-19 (Simonyan & Zisserman 2014) for feature extraction.

``vgg19_features(params, images, layers)`` runs the convolutional part of VGG-19 on NHWC RGB images in
[0, 1] and returns ``{name: activation}`` for exactly the requested layers, computing nothing beyond the
deepest of them.  Layer names are the papers': ``conv1_1`` ... ``conv5_4`` (before the ReLU),
``relu1_1`` ... ``relu5_4``, ``pool1`` ... ``pool5``.  Everything is jit-able and holds no state.
"""

from __future__ import annotations

from functools import partial
from typing import Iterable

import jax
import jax.numpy as jnp
import numpy as np

from . import weights as _weights
from .errors import NSTError

BLOCKS = _weights.BLOCKS


def _layer_sequence() -> tuple[str, ...]:
    seq = []
    for b, n in enumerate(BLOCKS, 1):
        for i in range(1, n + 1):
            seq += [f"conv{b}_{i}", f"relu{b}_{i}"]
        seq.append(f"pool{b}")
    return tuple(seq)


LAYERS: tuple[str, ...] = _layer_sequence()
"""Every layer name in network order."""
_INDEX = {name: i for i, name in enumerate(LAYERS)}


def vgg19_params(weights=None, log=None) -> dict:
    """The VGG-19 parameter pytree (float32 JAX arrays).

    ``weights``: ``None`` for the fetched, verified ImageNet weights (cached under ``$NST_JAX_HOME``; the
    environment variable ``NST_JAX_WEIGHTS`` overrides), a path to a Keras ``.h5``, an nst_jax ``.npz`` or
    a torchvision ``.pth``, or an already-loaded pytree (returned as JAX arrays).
    """
    if isinstance(weights, dict):
        tree = weights
    else:
        tree = _weights.load(_weights.resolve(weights, log=log))
    return jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), tree)


def check_layers(layers: Iterable[str]) -> tuple[str, ...]:
    layers = tuple(layers)
    bad = [name for name in layers if name not in _INDEX]
    if bad:
        raise NSTError(f"unknown VGG-19 layer(s) {', '.join(bad)}; valid names are conv1_1..conv5_4, "
                       "relu1_1..relu5_4, pool1..pool5")
    if not layers:
        raise NSTError("no VGG-19 layers requested")
    return layers


def min_size(layers: Iterable[str]) -> int:
    """Smallest image side for which every requested layer has at least one pixel."""
    deepest = max(_INDEX[name] for name in check_layers(layers))
    pools = sum(1 for name in LAYERS[: deepest + 1] if name.startswith("pool"))
    return 2 ** pools


def _pool(x, kind: str):
    window, strides = (1, 2, 2, 1), (1, 2, 2, 1)
    if kind == "max":
        return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, window, strides, "VALID")
    summed = jax.lax.reduce_window(x, 0.0, jax.lax.add, window, strides, "VALID")
    return summed * 0.25


def _conv(x, p):
    y = jax.lax.conv_general_dilated(x, p["kernel"], (1, 1), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y + p["bias"]


def vgg19_features(params: dict, images, layers: Iterable[str], pool: str = "max",
                   remat: bool = False) -> dict:
    """Activations of the requested VGG-19 layers.

    Args:
      params: the pytree from :func:`vgg19_params`.
      images: ``(N, H, W, 3)`` float RGB in [0, 1] (NumPy or JAX).  Preprocessing for the weights in
        use (Caffe BGR/mean or torchvision mean/std) happens inside, from ``params["preprocess"]``.
      layers: names to return, e.g. ``("relu1_1", "relu4_2")``.
      pool: ``"max"`` or ``"avg"`` -- 2x2, stride 2, no padding, floor on odd sizes (as Caffe and
        PyTorch do).  Gatys et al. report slightly smoother results with average pooling.
      remat: recompute each convolution's activations in the backward pass instead of storing them
        (``jax.checkpoint``): less memory for large images, about one more forward pass of compute.

    Returns:
      ``{name: (N, H', W', C) float32}`` for exactly the requested names.
    """
    layers = check_layers(layers)
    if pool not in ("max", "avg"):
        raise NSTError(f"pool must be 'max' or 'avg', not {pool!r}")
    x = jnp.asarray(images, jnp.float32)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise NSTError(f"images must be NHWC with 3 channels, got shape {tuple(x.shape)}")
    need = min_size(layers)
    if min(x.shape[1:3]) < need:
        raise NSTError(f"image {x.shape[1]}x{x.shape[2]} is too small for layer "
                       f"{max(layers, key=_INDEX.get)}: both sides must be at least {need} px")
    wanted = set(layers)
    deepest = max(_INDEX[name] for name in layers)
    conv = jax.checkpoint(_conv) if remat else _conv

    x = (x - params["preprocess"]["mean"]) / params["preprocess"]["std"]
    out = {}
    for name in LAYERS[: deepest + 1]:
        kind = name[:4]
        if kind == "conv":
            x = conv(x, params[name])
        elif kind == "relu":
            x = jax.nn.relu(x)
        else:
            x = _pool(x, pool)
        if name in wanted:
            out[name] = x
    return out


@partial(jax.jit, static_argnames=("layers", "pool"))
def _features_jit(params, images, layers, pool):
    return vgg19_features(params, images, layers, pool)


def features_numpy(params, images, layers, pool="max") -> dict:
    """Convenience: jit-compiled features returned as NumPy arrays."""
    out = _features_jit(params, jnp.asarray(images, jnp.float32), tuple(layers), pool)
    return {k: np.asarray(v) for k, v in out.items()}
