"""What the trained feed-forward networks (AdaIN decoder, Johnson et al. transform nets) share: their
layers as pure functions (:func:`valid_conv`, :func:`reflect_pad`, :func:`instance_norm`), layout helpers
and the ``.npz`` parameter files they ship in.

A parameter file holds one array per leaf of the flax parameter pytree, keyed by its path
(``"conv4_1/Conv_0/kernel"``), float16 by default, plus ``__format__`` (which kind of network) and
``__meta__`` (a JSON record: training steps, losses, configuration...).
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from .compile_cache import kept
from .errors import NSTError
from .fileio import atomic_write
from .vgg import conv3x3

EPS = 1e-5  # instance normalisation's (PyTorch's InstanceNorm2d default)


# --- layers -----------------------------------------------------------------------------------------------

def reflect_pad(x, p: int):
    """NHWC ``x`` padded by ``p`` rows and columns on each side, mirrored at the border (no edge repeat)."""
    return jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")


def valid_conv(x, kernel, stride: int = 1):
    """``lax.conv(x, kernel, stride, "VALID")`` (NHWC, HWIO) for odd square kernels, computed through
    XLA:CPU's fast path: the same numbers.

    XLA:CPU runs ``"SAME"`` convolutions through its fast (Eigen) kernels but ``"VALID"`` and explicit
    padding through a generic one, up to 20x slower for the 9x9 output layer of Johnson et al.'s network
    and about 2x for the AdaIN decoder's training step.  So: stride 1 is the ``"SAME"`` convolution of the
    (already padded) input cropped to its valid interior (3x3 kernels through the VGG's convolution: Winograd
    where it takes it on CPU, and its fast input-gradient rule); stride 2 on an even size is
    exactly ``"SAME"`` (whose padding is then 0 before and 1 after, so its windows are ``"VALID"``'s plus
    one more).
    """
    k = kernel.shape[0]
    p = k // 2
    dn = ("NHWC", "HWIO", "NHWC")
    if stride == 1:
        if k == 3:
            return conv3x3(x, kernel)[:, 1:-1, 1:-1]
        return jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME", dimension_numbers=dn)[:, p:-p, p:-p]
    if stride == 2 and k == 3 and x.shape[1] % 2 == 0 and x.shape[2] % 2 == 0:
        h, w = (x.shape[1] - k) // 2 + 1, (x.shape[2] - k) // 2 + 1  # VALID's size: one less than SAME's
        return jax.lax.conv_general_dilated(x, kernel, (2, 2), "SAME", dimension_numbers=dn)[:, :h, :w]
    return jax.lax.conv_general_dilated(x, kernel, (stride, stride), "VALID", dimension_numbers=dn)


def instance_norm(x, scale, bias, eps: float = EPS):
    """Instance normalisation (Ulyanov et al. 2016) of NHWC ``x``: each image's channel normalised over
    its positions (biased variance, ``eps`` inside the root), then ``* scale + bias``."""
    mean = jnp.mean(x, axis=(1, 2), keepdims=True)
    var = jnp.var(x, axis=(1, 2), keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + eps) * scale + bias


# --- layout and parameter files ---------------------------------------------------------------------------


def pad_to_multiple(x, multiple: int):
    """Pad H and W of an NHWC batch at the bottom/right up to a multiple of ``multiple`` (reflection, or
    edge replication when the image is too small to reflect)."""
    h, w = x.shape[1:3]
    ph, pw = -h % multiple, -w % multiple
    if ph == 0 and pw == 0:
        return x
    mode = "reflect" if min(h, w) > max(ph, pw) else "edge"
    pad = np.pad if isinstance(x, np.ndarray) else jnp.pad  # a NumPy batch stays on the host
    return pad(x, ((0, 0), (0, ph), (0, pw), (0, 0)), mode=mode)


def upsample_nearest(x, factor: int = 2):
    """Nearest-neighbour upsampling of an NHWC batch by an integer factor."""
    n, h, w, c = x.shape
    x = jnp.broadcast_to(x[:, :, None, :, None], (n, h, factor, w, factor, c))
    return x.reshape(n, h * factor, w * factor, c)


UPSAMPLINGS = ("nearest", "bilinear")


def upsample(x, kind: str = "nearest"):
    """x2 upsampling of an NHWC batch: ``"nearest"`` (each value repeated 2 x 2, as the shipped networks
    are trained) or ``"bilinear"`` (half-pixel centres, :func:`jax.image.resize`)."""
    if kind == "nearest":
        return upsample_nearest(x)
    if kind == "bilinear":
        n, h, w, c = x.shape
        return jax.image.resize(x, (n, 2 * h, 2 * w, c), "bilinear")
    raise ValueError(f"upsampling must be one of {', '.join(UPSAMPLINGS)}, not {kind!r}")


def count_params(tree) -> int:
    return int(sum(np.prod(np.shape(a)) for a in jax.tree_util.tree_leaves(tree)))


def path_key(path) -> str:
    return "/".join(str(getattr(p, "key", p)) for p in path)


def flat_shapes(init: Callable[[], dict], name: str) -> dict[str, tuple[int, ...]]:
    """``{"a/b/kernel": shape}`` of the pytree ``init()`` would build (nothing is computed; the trace it
    takes is kept on disk as ``name`` with the compiled programs, :func:`nst_jax.compile_cache.kept`)."""

    def shapes():
        tree = jax.eval_shape(init)
        return {path_key(p): list(leaf.shape) for p, leaf in jax.tree_util.tree_leaves_with_path(tree)}

    return {k: tuple(v) for k, v in kept(f"shapes-{name}", shapes).items()}


def save_params(path: str | os.PathLike, params, fmt: str, meta: dict | None = None,
                dtype=np.float16) -> Path:
    """Write a parameter pytree as an ``.npz`` (float16 by default), atomically."""
    path = Path(path)
    arrays = {path_key(p): np.asarray(v).astype(dtype)
              for p, v in jax.tree_util.tree_leaves_with_path(params)}
    arrays["__format__"] = np.array(fmt)
    arrays["__meta__"] = np.array(json.dumps(meta or {}))
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda f: np.savez(f, **arrays))


def load_params(path: Path, fmt: str, expected, what: str, made_by: str):
    """``(params, meta)`` from an ``.npz`` written by :func:`save_params`, checked against the expected
    ``{key: shape}`` (or a function of the file's metadata returning it); float32 JAX arrays.  ``what``
    names the network and ``made_by`` the command that writes such files, for the error messages."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if "__format__" not in z.files or str(z["__format__"]) != fmt:
                raise NSTError(f"{path} is not an nst_jax {what} (.npz from `{made_by}`)")
            meta = json.loads(str(z["__meta__"])) if "__meta__" in z.files else {}
            flat = {k: np.asarray(z[k], np.float32) for k in z.files if not k.startswith("__")}
    except NSTError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise NSTError(f"{path} is not a readable {what} file ({reason})") from None
    if callable(expected):
        expected = expected(meta)
    if set(flat) != set(expected) or any(flat[k].shape != expected[k] for k in expected):
        raise NSTError(f"{path} does not hold a {what} of the expected architecture")
    tree: dict = {}
    for key, value in flat.items():
        node = tree
        *parents, leaf = key.split("/")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return jax.device_put(tree), meta  # a transfer; jnp.asarray would compile a program per shape
