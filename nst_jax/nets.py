"""What the trained feed-forward networks (AdaIN decoder, Johnson et al. transform nets) share: layout
helpers and the ``.npz`` parameter files they ship in.

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

from .errors import NSTError
from .fileio import atomic_write


def pad_to_multiple(x, multiple: int):
    """Pad H and W of an NHWC batch at the bottom/right up to a multiple of ``multiple`` (reflection, or
    edge replication when the image is too small to reflect)."""
    h, w = x.shape[1:3]
    ph, pw = -h % multiple, -w % multiple
    if ph == 0 and pw == 0:
        return x
    mode = "reflect" if min(h, w) > max(ph, pw) else "edge"
    return jnp.pad(x, ((0, 0), (0, ph), (0, pw), (0, 0)), mode=mode)


def upsample_nearest(x, factor: int = 2):
    """Nearest-neighbour upsampling of an NHWC batch by an integer factor."""
    n, h, w, c = x.shape
    x = jnp.broadcast_to(x[:, :, None, :, None], (n, h, factor, w, factor, c))
    return x.reshape(n, h * factor, w * factor, c)


def count_params(tree) -> int:
    return int(sum(np.prod(np.shape(a)) for a in jax.tree_util.tree_leaves(tree)))


def path_key(path) -> str:
    return "/".join(str(getattr(p, "key", p)) for p in path)


def flat_shapes(init: Callable[[], dict]) -> dict[str, tuple[int, ...]]:
    """``{"a/b/kernel": shape}`` of the pytree ``init()`` would build (nothing is computed)."""
    tree = jax.eval_shape(init)
    return {path_key(p): tuple(leaf.shape) for p, leaf in jax.tree_util.tree_leaves_with_path(tree)}


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
        node[leaf] = jnp.asarray(value)
    return tree, meta
