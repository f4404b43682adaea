"""The objective of Gatys, Ecker & Bethge (2015) as a plain function of the image: content features, style
representations (:class:`nst_jax.style.StyleLoss`) and the terms on the pixels, composed as the paper writes
them (:func:`objective`, :func:`gatys_loss`); the targets they are measured against (:func:`compute_targets`);
and the static (:class:`Config`) and dynamic (:class:`LossWeights`) parts of a compiled objective.

Defaults (content 5, style 100 per layer, TV 5e-4 on 0-255 pixel values, content at relu4_2 and style
at relu1_1 ... relu5_1 with equal layer weights) are jcjohnson/neural-style's, whose loss
normalisations :mod:`nst_jax.losses` follows; neural-style's TV module has an implicit factor 1/2, so
its ``-tv_weight 1e-3`` is our 5e-4.  The PyTorch tutorial (content 1, style 1e6) divides its Gram
matrix by N*C*H*W and normalises the input with torchvision's mean/std, so its numbers do not transfer.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..compile_cache import stored
from ..content import FEATURE, ContentLoss, content_loss
from ..errors import NSTError
from ..losses import temporal_loss, total_variation
from ..style import GRAM, StyleLoss, style_loss
from ..vgg import default_conv, vgg19_features

CONTENT_LAYERS = ("relu4_2",)
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
DTYPES = ("float32", "bfloat16")  # VGG-19's computation: float32, or mixed precision


@dataclasses.dataclass(frozen=True)
class Objective:
    """What the objective is (static: changing it recompiles): the layers, the pooling, the style
    representation (:class:`nst_jax.style.StyleLoss`), ``regions``, the number of regions of spatial
    control (0: none; :mod:`nst_jax.regions`), and the content representation
    (:class:`nst_jax.content.ContentLoss`)."""

    content_layers: tuple[str, ...] = CONTENT_LAYERS
    style_layers: tuple[str, ...] = STYLE_LAYERS
    pool: str = "max"
    style_loss: StyleLoss = GRAM
    regions: int = 0
    content_loss: ContentLoss = FEATURE

    def __post_init__(self):
        object.__setattr__(self, "style_loss", style_loss(self.style_loss))  # a name or a StyleLoss
        object.__setattr__(self, "content_loss", content_loss(self.content_loss))  # a name or a ContentLoss

    @property
    def stochastic(self) -> bool:
        """Whether a term samples: each evaluation then draws a fresh key."""
        return self.style_loss.stochastic or self.content_loss.stochastic


@dataclasses.dataclass(frozen=True)
class Execution:
    """How the objective is evaluated (static), not what it is: ``band`` > 0, a band of this many rows at a
    time (:func:`gatys_value_and_grad_banded`); ``remat``, recompute each VGG block in the backward pass;
    ``conv``, VGG-19's convolution (:func:`nst_jax.vgg.vgg19_features`); ``dtype``, VGG-19's activations and
    convolutions, ``"float32"`` or ``"bfloat16"`` (mixed precision: bfloat16 operands summed in float32;
    the feature maps come back float32, and the terms, their targets and the solver stay float32)."""

    band: int = 0
    remat: bool = False
    conv: str = "auto"
    dtype: str = "float32"

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise NSTError(f"dtype must be 'float32' or 'bfloat16', not {self.dtype!r}")


@dataclasses.dataclass(frozen=True)
class Config:
    """The static part of a compiled Gatys program: its :class:`Objective` and its :class:`Execution`."""

    objective: Objective = Objective()
    execution: Execution = Execution()

    def with_band(self, band: int) -> Config:
        """The same objective evaluated ``band`` rows at a time (0: the whole image)."""
        return dataclasses.replace(self, execution=dataclasses.replace(self.execution, band=band))


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class LossWeights:
    """The dynamic part of the objective, a pytree (changing it does not recompile): the content, style
    and TV weights and one weight per style layer (``None``: all 1).  The class attributes are the
    defaults every entry point and the CLI use (neural-style's, see the module notes)."""

    content: Any = 5.0
    style: Any = 100.0
    tv: Any = 5e-4
    style_layers: Any = None
    seed: Any = 0  # the key of a sampling style representation (one per picture; folded with each evaluation)
    temporal: Any = 1e3  # Ruder et al. 2016's, when the targets hold earlier frames (nst_jax.video)

    def __getitem__(self, name):  # weights["content"], as for the plain dict the objective also takes
        return getattr(self, name)

    def as_arrays(self, n_style_layers: int) -> LossWeights:
        layers = np.ones(n_style_layers) if self.style_layers is None else self.style_layers
        # NumPy values: a jnp scalar made eagerly compiles a program of its own
        return LossWeights(np.float32(self.content), np.float32(self.style), np.float32(self.tv),
                           np.asarray(layers, np.float32), np.int32(self.seed), np.float32(self.temporal))


def features(params, x, layers, cfg: Config):
    """VGG-19's maps at ``layers`` as ``cfg`` evaluates them, float32 whatever the network ran in."""
    maps = vgg19_features(params, x, tuple(dict.fromkeys(layers)), cfg.objective.pool,
                          remat=cfg.execution.remat, conv=cfg.execution.conv,
                          dtype=jnp.dtype(cfg.execution.dtype))
    return {k: v.astype(jnp.float32) for k, v in maps.items()}


def content_targets(params, content, cfg: Config):
    """The content representation's targets of the content images' feature maps at the content layers
    (the maps themselves for Gatys's feature distance; computed a band of rows at a time if
    ``cfg.execution.band`` is set)."""
    layers, rep = cfg.objective.content_layers, cfg.objective.content_loss
    if cfg.execution.band:
        from .banded import banded_summary

        maps = banded_summary(params, content, layers, (), cfg)[0]
    else:
        maps = features(params, content, layers, cfg)
    return {k: rep.target(v) for k, v in maps.items()}


def style_targets(params, styles, blend, cfg: Config, guides=None):
    """The style images' targets at the style layers (the representation's ``target``; by bands as its
    :class:`nst_jax.style.Sums` when ``cfg.execution.band`` is set), mixed by ``blend`` (weights summing to
    1).

    With regions (``cfg.objective.regions``), style image ``r`` is region ``r``'s, not mixed: each target
    (on a leading region axis) is taken over the part of its image that ``guides[r]`` marks (``{layer:
    (1, 1, h, w, 1)}`` weights, :func:`nst_jax.regions.guides`; ``None``: the whole image), and ``"present"``
    (R,) per layer says which regions have any of their style image there."""
    obj, rep = cfg.objective, cfg.objective.style_loss
    guides = guides or [None] * len(styles)
    per_style, present = [], []
    if cfg.execution.band:
        from .banded import banded_summary
    for s, g in zip(styles, guides, strict=True):
        if g is None and cfg.execution.band:
            sums = banded_summary(params, s, (), obj.style_layers, cfg)[1]
            per_style.append({k: rep.sums.finish(sums[k], positions(params, s.shape, k, cfg))
                              for k in obj.style_layers})
        elif g is None:
            f = features(params, s, obj.style_layers, cfg)
            per_style.append({k: rep.target(f[k]) for k in obj.style_layers})
        else:  # a weighted part of the image: a representation with Sums.weighted
            if cfg.execution.band:
                sums = banded_summary(params, s, (), obj.style_layers, cfg, g)[1]
            else:
                f = features(params, s, obj.style_layers, cfg)
                sums = {k: summarise(rep, f[k], g[k]) for k in obj.style_layers}
            counts = {k: jnp.sum(g[k][0]) for k in obj.style_layers}
            per_style.append({k: rep.sums.finish(jax.tree_util.tree_map(lambda v: v[0], sums[k]),
                                                 jnp.maximum(counts[k], _TINY)) for k in obj.style_layers})
        present.append({k: jnp.float32(1.0) if g is None else (counts[k] > 0).astype(jnp.float32)
                        for k in obj.style_layers})
    if obj.regions:
        stacked = {k: jax.tree_util.tree_map(lambda *t: jnp.stack(t), *[t[k] for t in per_style])
                   for k in obj.style_layers}
        return {**stacked, "present": {k: jnp.stack([p[k] for p in present]) for k in obj.style_layers}}
    return {k: rep.mixed([t[k] for t in per_style], list(blend)) for k in obj.style_layers}


_TINY = 1e-12  # under a region's count: an empty region's statistic is zero, and its term is left out


def summarise(rep: StyleLoss, f, guide=None):
    """What the style term needs of the feature map ``f`` (N, H, W, C): the representation's summary
    (the map itself, or its :class:`nst_jax.style.Sums`), or with ``guide`` ((R, N, H, W, 1) weights) one
    weighted :class:`~nst_jax.style.Sums` per region, on a leading axis."""
    if guide is None:
        return rep.summarise(f)
    return jax.vmap(lambda w: rep.sums.weighted(f, w))(guide)


def style_counts(params, shape, layers, cfg: Config, regions=None) -> dict:
    """The positions each style layer's statistic is taken over: H * W of its map for images of ``shape``,
    or with ``regions`` (the targets' ``"regions"``) each region's weight there, (R,)."""
    if regions is not None:
        return {k: jnp.sum(regions[k], axis=(1, 2, 3, 4)) for k in layers}
    return {k: positions(params, shape, k, cfg) for k in layers}


def compute_targets(params, content, styles, blend, cfg: Config):
    """Content features and the blended style targets (computed once per run and scale).

    ``content``: (1, H, W, 3); ``styles``: list of (1, h_k, w_k, 3); ``blend``: weights summing to 1."""
    return {"content": content_targets(params, content, cfg),
            "style": style_targets(params, styles, blend, cfg)}


# kept whole between processes where they can be keyed (compile_cache.stored)
_content_targets = stored(jax.jit(content_targets, static_argnums=(2,)), "gatys_content_targets", (2,))
_style_targets_traced = stored(jax.jit(style_targets, static_argnums=(3,)), "gatys_style_targets", (3,))
_style_targets_static = stored(jax.jit(style_targets, static_argnums=(2, 3)), "gatys_style_targets_mix",
                               (2, 3))


def targets_config(cfg: Config) -> Config:
    """The configuration the targets are computed with: ``conv="auto"`` (unless ``$NST_JAX_CONV`` says
    otherwise) means ``lax.conv`` for them.  They are one forward pass, once: Winograd's program takes 2.4 s
    to compile at 256 px against 0.1 s, for the same run time (BENCHMARKS.md "The first run")."""
    if cfg.execution.conv != "auto" or default_conv() != "auto":
        return cfg
    return dataclasses.replace(cfg, execution=dataclasses.replace(cfg.execution, conv="direct"))


def content_targets_compiled(params, content, cfg: Config):
    """:func:`content_targets` compiled, with :func:`targets_config`."""
    return _content_targets(params, content, targets_config(cfg))


def style_targets_compiled(params, styles, blend, cfg: Config, guides=None):
    """:func:`style_targets` compiled, with :func:`targets_config`; the blend is data for a weighted sum of
    targets, and static for a representation that mixes samples (their counts are shapes)."""
    cfg = targets_config(cfg)
    if cfg.objective.style_loss.mix is None:
        return _style_targets_traced(params, styles, blend, cfg, guides)
    return _style_targets_static(params, styles, tuple(float(w) for w in blend), cfg, guides)


def positions(params, shape, layer, cfg: Config) -> int:
    """H * W of the feature map at ``layer`` for images of ``shape``."""
    f = jax.eval_shape(lambda y: features(params, y, (layer,), cfg),
                       jax.ShapeDtypeStruct(tuple(shape), jnp.float32))[layer]
    return f.shape[1] * f.shape[2]


def style_key(weights, key):
    """The key of a sampling representation: the picture's seed, folded with the evaluation's number
    (``key``, when given)."""
    base = jax.random.key(weights["seed"] if not isinstance(weights, dict) or "seed" in weights else 0)
    return base if key is None else jax.random.fold_in(base, key)


def image_terms(x, targets) -> dict:
    """The terms of the objective taken on the image ``x`` (N, H, W, 3) in [0, 1] itself, in 0..255 units:
    ``tv``, its total variation, and, when ``targets`` hold earlier frames (``targets["temporal"]``:
    ``previous`` (K, N, H, W, 3), earlier results warped onto this frame, and ``weights`` (K, N, H, W, 1)),
    ``temporal``, Ruder et al. 2016's temporal loss :func:`nst_jax.losses.temporal_loss` summed over them."""
    terms = {"tv": total_variation(x * 255.0)}
    if "temporal" in targets:
        t = targets["temporal"]
        terms["temporal"] = sum(temporal_loss(x * 255.0, t["previous"][k] * 255.0, t["weights"][k])
                                for k in range(t["previous"].shape[0]))
    return terms


def objective(summary, counts, pixels, targets, weights, obj: Objective, key):
    """The objective from its terms, as Gatys et al. write it: ``content_weight * sum_l content_l +
    style_weight * sum_l w_l style_l + tv_weight * TV`` (+ ``temporal_weight * temporal`` for a video frame,
    Ruder et al.).  ``summary``: ``{"content": {layer: feature map}, "style": {layer: the representation's
    summary}}`` (the feature map, or its :class:`nst_jax.style.Sums`), ``counts``: the positions of each style
    layer, ``pixels``: :func:`image_terms`, ``key``: a ``jax.random`` key (one per style layer is folded from
    it).  Returns ``(total, terms)``."""
    rep, crep = obj.style_loss, obj.content_loss
    if crep.joint:
        content = crep.distance(tuple(summary["content"][k] for k in obj.content_layers),
                                tuple(targets["content"][k] for k in obj.content_layers),
                                jax.random.fold_in(key, 1000))
    else:
        content = sum(crep.distance(summary["content"][k], targets["content"][k],
                                    jax.random.fold_in(key, 1000 + i))
                      for i, k in enumerate(obj.content_layers))
    style = sum(weights["style_layers"][i] * style_value(obj, summary["style"][k], counts[k],
                                                         targets["style"], k, jax.random.fold_in(key, i))
                for i, k in enumerate(obj.style_layers))
    terms = {"content": weights["content"] * crep.weight * content,
             "style": weights["style"] * rep.weight * style,
             **{k: weights[k] * v for k, v in pixels.items()}}
    return sum(terms.values()), terms


def style_value(obj: Objective, summary, count, style_targets, layer: str, key):
    """One style layer's term: the representation's distance, or with regions the mean over the regions of
    each one's distance between its weighted statistic and its own style's target (a region with no
    position here, in the picture or in its style image, has no term)."""
    rep, target = obj.style_loss, style_targets[layer]
    if not obj.regions:
        return rep.value(summary, count, target, key)
    values = jax.vmap(lambda s, m, t: rep.sums.compare(rep.sums.finish(s, jnp.maximum(m, _TINY)), t))(
        summary, count, target)
    used = (count > 0) * style_targets["present"][layer]
    return jnp.sum(jnp.where(used > 0, values, 0.0)) / obj.regions


def gatys_loss(params, x, targets, weights, cfg: Config, key=None):
    """Total loss and its terms for images ``x`` (N, H, W, 3): :func:`objective` on the whole image's
    features.

    ``weights``: a :class:`LossWeights` (or a dict with its entries), ``style_layers`` of shape (L,);
    ``key``: an integer folded into the picture's seed, for a sampling style representation (the evaluation's
    number)."""
    obj = cfg.objective
    f = features(params, x, obj.content_layers + obj.style_layers, cfg)
    regions = targets.get("regions")
    summary = {"content": {k: f[k] for k in obj.content_layers},
               "style": {k: summarise(obj.style_loss, f[k], None if regions is None else regions[k])
                         for k in obj.style_layers}}
    counts = style_counts(params, x.shape, obj.style_layers, cfg, regions)
    return objective(summary, counts, image_terms(x, targets), targets, weights, obj,
                     style_key(weights, key))
