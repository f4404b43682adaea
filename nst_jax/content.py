"""Content representations: what the Gatys objective keeps of the photo's features, as plug-ins (the content
term's counterpart of :mod:`nst_jax.style`).

A representation is a :class:`ContentLoss`, a pair of pure functions on VGG-19 feature maps (N, H, W, C) of
the same shape (the picture's and the photo's):

* ``target(features) -> pytree``, computed once from the photo (default: the feature map itself);
* ``distance(features, target, key) -> scalar``; ``key`` is a ``jax.random`` key drawn fresh at every
  evaluation, for representations that sample.  A representation that is ``joint`` takes all its layers at
  once: ``distance`` then receives tuples of the maps and of their targets, in the content layers' order, and
  is called once (a hypercolumn term); otherwise once per layer, the values summed.

The content maps are assembled whole in a banded evaluation, so every representation keeps ``--tile`` and
``--devices`` exact.

The named representations (:data:`CONTENT_LOSSES`):

* ``feature``: Gatys et al.'s squared distance between the feature maps (mean over positions and channels;
  the default);
* ``self-similarity``: STROTSS's content term (Kolkin, Salavon & Shakhnarovich 2019): at
  :data:`SELF_SIMILARITY_POSITIONS` positions (all of them when the map has no more; else drawn afresh at
  every evaluation, the same positions in the picture and the photo), the cosine distance matrices
  ``D_ij = 1 - cos(f_i, f_j)`` of the picture and of the photo, each column divided by its sum, and the
  mean absolute difference between the two: the picture keeps which of its parts resemble which, not their
  features, so the style may change what each part looks like.  STROTSS takes it over hypercolumns (every
  layer's features at a position, concatenated); here it is taken layer by layer and summed, at
  :data:`SELF_SIMILARITY_LAYERS` unless other content layers are named: over hypercolumns of VGG-19 the
  middle layers' longer feature vectors decide the cosine and the photo's drawing is kept less
  (BENCHMARKS.md, "Content representations").  STROTSS's own form is one line away:
  ``ContentLoss(distance=self_similarity_distance, joint=True, layers=...)`` (:func:`hypercolumns`).

``weight`` multiplies the content weight: each named representation's makes its term equal to the feature
distance's at Gatys's result (the median over three held-back pairs at 192 px,
``experiments/content_losses.py --calibrate``), so that the default content weight keeps about as much of
the photo with either.  ``solver``: the solver it wants when the user names none (``None``: no preference;
the style representation's then).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp

from .errors import NSTError
from .losses import GRAM_PRECISION
from .losses import content_loss as feature_distance

SELF_SIMILARITY_POSITIONS = 1024  # positions of one self-similarity estimate (STROTSS samples 1024)
# STROTSS's hypercolumns reach from conv1_1 to conv5_3; at relu4_2 alone (Gatys's content layer) the term
# kept too little of the photo against remd (BENCHMARKS.md, "Content representations").
SELF_SIMILARITY_LAYERS = ("relu2_1", "relu3_1", "relu4_1")
STROTSS_LAYERS = ("relu1_1", "relu1_2", "relu2_1", "relu2_2", "relu3_1", "relu3_2", "relu3_3", "relu4_3",
                  "relu5_3")  # its VGG-16 feature indices 1, 3, 6, 8, 11, 13, 15, 22, 29, named in VGG-19


@dataclasses.dataclass(frozen=True)
class ContentLoss:
    """A content representation: ``target(features)`` and ``distance(features, target, key)`` (module
    notes); ``stochastic``: whether ``distance`` uses its key; ``weight``: multiplies the content weight;
    ``solver``: the default solver with it (``None``: no preference); ``layers``: the content layers it is
    taken at when the user names none (``None``: Gatys's, relu4_2); ``joint``: ``distance`` takes all the
    layers at once, as tuples (module notes)."""

    distance: Callable
    target: Callable = lambda f: f  # noqa: E731
    name: str = "custom"
    weight: float = 1.0
    stochastic: bool = False
    solver: str | None = None
    layers: tuple[str, ...] | None = None
    joint: bool = False

    def __post_init__(self):
        if not callable(self.target) or not callable(self.distance):
            raise NSTError("a content loss needs a target(features) and a distance(features, target, key)")


def _cosine_distances(x):
    n = x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-8)
    return 1.0 - jnp.matmul(n, n.T, precision=GRAM_PRECISION)


def _bilinear(f, y, x):
    """``f`` (H, W, C) at the real coordinates ``(y, x)`` (pixel centres at the integers; clamped at the
    borders): (M, C)."""
    h, w = f.shape[:2]
    y, x = jnp.clip(y, 0.0, h - 1.0), jnp.clip(x, 0.0, w - 1.0)
    y0, x0 = jnp.floor(y).astype(jnp.int32), jnp.floor(x).astype(jnp.int32)
    y1, x1 = jnp.minimum(y0 + 1, h - 1), jnp.minimum(x0 + 1, w - 1)
    wy, wx = (y - y0)[:, None], (x - x0)[:, None]
    return ((1 - wy) * ((1 - wx) * f[y0, x0] + wx * f[y0, x1])
            + wy * ((1 - wx) * f[y1, x0] + wx * f[y1, x1]))


def hypercolumns(maps, index):
    """The hypercolumns of the positions ``index`` (flat, on the grid of the finest of ``maps``): each map
    (1, H_l, W_l, C_l) interpolated bilinearly at the position's centre (every grid spanning the same
    picture, pixel centres at half-pixel offsets, as a 2x2 pooling's are), the maps concatenated:
    (M, sum C_l)."""
    grid = max((m.shape[1:3] for m in maps), key=lambda s: s[0] * s[1])
    gy, gx = (index // grid[1]).astype(jnp.float32), (index % grid[1]).astype(jnp.float32)
    cols = [_bilinear(m[0], (gy + 0.5) * m.shape[1] / grid[0] - 0.5, (gx + 0.5) * m.shape[2] / grid[1] - 0.5)
            for m in maps]
    return jnp.concatenate(cols, axis=-1)


def _maps(f):
    return tuple(f) if isinstance(f, tuple | list) else (f,)


def finest_grid(maps) -> tuple[int, int]:
    """(H, W) of the finest of ``maps`` (1, H_l, W_l, C_l): the grid positions are numbered on."""
    return max((m.shape[1:3] for m in _maps(maps)), key=lambda s: s[0] * s[1])


def self_similarity_distance(f, t, key):
    """STROTSS's content term (module notes) between the picture's maps ``f`` and the photo's ``t`` (tuples
    of (1, H, W, C) maps, or one map) at :data:`SELF_SIMILARITY_POSITIONS` positions drawn with ``key``
    (all of them where there are no more): :func:`self_similarity_at`."""
    h, w = finest_grid(f)
    m = h * w
    if m > SELF_SIMILARITY_POSITIONS:
        idx = jax.random.choice(key, m, (SELF_SIMILARITY_POSITIONS,), replace=False)
    else:
        idx = jnp.arange(m)
    return self_similarity_at(f, t, idx)


def self_similarity_at(f, t, idx):
    """``mean |D^x_ij / sum_i D^x_ij - D^c_ij / sum_i D^c_ij|`` over the hypercolumns of the positions
    ``idx`` (flat, on :func:`finest_grid`) of the picture's maps ``f`` and the photo's ``t``, ``D`` the
    cosine distances between positions."""
    f, t = _maps(f), _maps(t)
    x, c = hypercolumns(f, idx), hypercolumns(t, idx)
    dx, dc = _cosine_distances(x), _cosine_distances(c)
    dx = dx / jnp.maximum(jnp.sum(dx, axis=0, keepdims=True), 1e-8)
    dc = dc / jnp.maximum(jnp.sum(dc, axis=0, keepdims=True), 1e-8)
    return jnp.mean(jnp.abs(dx - dc))


FEATURE = ContentLoss(name="feature", distance=lambda f, t, key=None: feature_distance(f, t))
SELF_SIMILARITY = ContentLoss(name="self-similarity", distance=self_similarity_distance, weight=4.6e8,
                              stochastic=True, solver="adam", layers=SELF_SIMILARITY_LAYERS)

CONTENT_LOSSES = {r.name: r for r in (FEATURE, SELF_SIMILARITY)}


def content_loss(spec) -> ContentLoss:
    """A :class:`ContentLoss` from a name of :data:`CONTENT_LOSSES` or a :class:`ContentLoss` itself."""
    if isinstance(spec, ContentLoss):
        return spec
    if isinstance(spec, str) and spec in CONTENT_LOSSES:
        return CONTENT_LOSSES[spec]
    raise NSTError(f"content loss must be one of {', '.join(CONTENT_LOSSES)} or a ContentLoss, not {spec!r}")


__all__ = ["CONTENT_LOSSES", "FEATURE", "SELF_SIMILARITY", "SELF_SIMILARITY_LAYERS",
           "SELF_SIMILARITY_POSITIONS", "STROTSS_LAYERS", "ContentLoss", "content_loss", "finest_grid",
           "hypercolumns", "self_similarity_at", "self_similarity_distance"]
