"""Content representations: what the Gatys objective keeps of the photo's features, as plug-ins (the content
term's counterpart of :mod:`nst_jax.style`).

A representation is a :class:`ContentLoss`, a pair of pure functions on VGG-19 feature maps (N, H, W, C) of
the same shape (the picture's and the photo's):

* ``target(features) -> pytree``, computed once from the photo (default: the feature map itself);
* ``distance(features, target, key) -> scalar``; ``key`` is a ``jax.random`` key drawn fresh at every
  evaluation, for representations that sample.

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
  features, so the style may change what each part looks like.  STROTSS takes it over hypercolumns of
  several layers at once; here it is taken layer by layer, at relu2_1, relu3_1 and relu4_1 unless other
  content layers are named.

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
# Three layers from fine to coarse, as STROTSS's hypercolumns reach from conv1 to conv5: at relu4_2 alone
# (Gatys's content layer, 24 x 18 positions at 192 px) the term kept too little of the photo against remd
# (BENCHMARKS.md, "Content representations").
SELF_SIMILARITY_LAYERS = ("relu2_1", "relu3_1", "relu4_1")


@dataclasses.dataclass(frozen=True)
class ContentLoss:
    """A content representation: ``target(features)`` and ``distance(features, target, key)`` (module
    notes); ``stochastic``: whether ``distance`` uses its key; ``weight``: multiplies the content weight;
    ``solver``: the default solver with it (``None``: no preference); ``layers``: the content layers it is
    taken at when the user names none (``None``: Gatys's, relu4_2)."""

    distance: Callable
    target: Callable = lambda f: f  # noqa: E731
    name: str = "custom"
    weight: float = 1.0
    stochastic: bool = False
    solver: str | None = None
    layers: tuple[str, ...] | None = None

    def __post_init__(self):
        if not callable(self.target) or not callable(self.distance):
            raise NSTError("a content loss needs a target(features) and a distance(features, target, key)")


def _cosine_distances(x):
    n = x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-8)
    return 1.0 - jnp.matmul(n, n.T, precision=GRAM_PRECISION)


def self_similarity_distance(f, t, key):
    """STROTSS's content term for one layer (module notes) between the picture's map ``f`` and the photo's
    ``t`` (both (1, H, W, C)): ``mean |D^x_ij / sum_i D^x_ij - D^c_ij / sum_i D^c_ij|`` over the positions."""
    x, c = f.reshape(-1, f.shape[-1]), t.reshape(-1, t.shape[-1])
    m = x.shape[0]
    if m > SELF_SIMILARITY_POSITIONS:
        idx = jax.random.choice(key, m, (SELF_SIMILARITY_POSITIONS,), replace=False)
        x, c = x[idx], c[idx]
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
           "SELF_SIMILARITY_POSITIONS", "ContentLoss", "content_loss", "self_similarity_distance"]
