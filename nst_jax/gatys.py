"""Gatys, Ecker & Bethge (2015): optimise the pixels of an image so that its VGG-19 features match a
content image and the Gram matrices of its features match one or more style images.

The objective is a plain function of the image (:func:`gatys_loss`); any solver of
:mod:`nst_jax.solvers` (an optax-style ``(init, step)`` pair) runs it compiled:

* ``"lbfgs"`` (default): L-BFGS with unit steps and a history of 100 -- one function evaluation per
  iteration -- the algorithm of ``torch.optim.LBFGS`` without line search, which neural-style and
  neural-style-pt use (:mod:`nst_jax.lbfgs`; its iterates equal PyTorch's).  A plain
  ``jaxopt.LBFGS`` with its default line search spends several evaluations per iteration and is
  ~15x slower end to end here; ``jaxopt.LBFGS`` with a fixed step stores negative-curvature pairs
  and cannot shorten one step, and reached a much worse loss at 512 px (BENCHMARKS.md).
* ``"adam"``: :func:`optax.adam` on the pixels.
* ``"lbfgsb"``: ``jaxopt.LBFGSB`` with every pixel boxed to [0, 1] (BENCHMARKS.md compares it).

Every solver runs as ``lax.fori_loop`` chunks of iterations inside one compiled executable: no Python per
iteration.  Between chunks Python reports progress (a callback receiving an
:class:`nst_jax.runinfo.Event`), saves intermediate images, and can be interrupted (Ctrl-C) with the
current iterate kept.  Many pictures run as one batch (:func:`stylize_many`): ``jax.vmap`` over their
problems, each with its own solver state and loss.

Safeguard: L-BFGS without a line search can overshoot, and PyTorch's runs recover from it (2.8x the
loss at 512 px; 1e21 from 1.4e10 with a 100x style weight).  So, as in PyTorch, every finite trial
point is taken; one whose loss is not finite (or above :data:`REJECT_FACTOR` x the current one, if
set) is refused, and the next iteration retries the same direction with a shorter step, keeping the
curvature history -- no extra evaluations.  Refusing finite rises made results worse (BENCHMARKS.md).

Units and pixel range: L-BFGS optimises unconstrained pixel values in 0..255, exactly as
neural-style does (projection between iterations would break its curvature pairs), and the result is
clipped to [0, 1]; the report counts how many values were outside.  The units matter through the
first, gradient-normalised step (on [0, 1] values it is 255x larger relative to the image) and the
absolute curvature threshold s.y > 1e-10 (on [0, 1] values PyTorch's first pair falls under it and
its runs diverge; see experiments/bench_gatys.py).  Adam works on [0, 1] values and projects onto
[0, 1] after every step.

Defaults (content 5, style 100 per layer, TV 5e-4 on 0-255 pixel values, content at relu4_2 and style
at relu1_1 ... relu5_1 with equal layer weights) are jcjohnson/neural-style's, whose loss
normalisations :mod:`nst_jax.losses` follows; neural-style's TV module has an implicit factor 1/2, so
its ``-tv_weight 1e-3`` is our 5e-4.  The PyTorch tutorial (content 1, style 1e6) divides its Gram
matrix by N*C*H*W and normalises the input with torchvision's mean/std, so its numbers do not transfer.
"""

from __future__ import annotations

import dataclasses
import math
import time
from functools import partial
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import image as im
from . import solvers
from .config import blend_weights, check_blend, freeze, with_fields
from .errors import NSTError
from .losses import content_loss, temporal_loss, total_variation
from .runinfo import Event
from .runinfo import report as make_report
from .style import GRAM, StyleLoss, style_loss
from .tiling import Footprint, parse_tile, plan, replicate, row_sharding, shard_rows, to_host
from .vgg import LAYERS, check_layers, min_size, vgg19_features, vgg19_params, with_winograd

CONTENT_LAYERS = ("relu4_2",)
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CHUNK = 10  # iterations per compiled call between progress reports


@dataclasses.dataclass(frozen=True)
class Objective:
    """What the objective is (static: changing it recompiles): the layers, the pooling and the style
    representation (:class:`nst_jax.style.StyleLoss`)."""

    content_layers: tuple[str, ...] = CONTENT_LAYERS
    style_layers: tuple[str, ...] = STYLE_LAYERS
    pool: str = "max"
    style_loss: StyleLoss = GRAM

    def __post_init__(self):
        object.__setattr__(self, "style_loss", style_loss(self.style_loss))  # a name or a StyleLoss


@dataclasses.dataclass(frozen=True)
class Execution:
    """How the objective is evaluated (static), not what it is: ``band`` > 0, a band of this many rows at a
    time (:func:`gatys_value_and_grad_banded`); ``remat``, recompute each VGG block in the backward pass;
    ``conv``, VGG-19's convolution (:func:`nst_jax.vgg.vgg19_features`)."""

    band: int = 0
    remat: bool = False
    conv: str = "auto"


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
        return LossWeights(jnp.float32(self.content), jnp.float32(self.style), jnp.float32(self.tv),
                           jnp.asarray(layers, jnp.float32), jnp.int32(self.seed), jnp.float32(self.temporal))


class StylizeInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`stylize` or :func:`stylize_many`: the running batch's current iterates and reports
    so far, one per picture (``images``, ``reports``); ``image`` and ``report`` are the first picture's."""

    def __init__(self, images, reports):
        super().__init__("interrupted")
        self.images = list(images)
        self.reports = reports if isinstance(reports, list) else [reports]
        self.image, self.report = self.images[0], self.reports[0]


# --------------------------------------------------------------------------------------------------
# the objective
# --------------------------------------------------------------------------------------------------

def _features(params, x, layers, cfg: Config):
    return vgg19_features(params, x, tuple(dict.fromkeys(layers)), cfg.objective.pool,
                          remat=cfg.execution.remat, conv=cfg.execution.conv)


def content_targets(params, content, cfg: Config):
    """The content image's feature maps at the content layers (a band of rows at a time if
    ``cfg.execution.band`` is set)."""
    layers = cfg.objective.content_layers
    if cfg.execution.band:
        return _banded_summary(params, content, layers, (), cfg)[0]
    return _features(params, content, layers, cfg)


def style_targets(params, styles, blend, cfg: Config):
    """The style images' targets at the style layers (the representation's ``target``; by bands as its
    :class:`nst_jax.style.Sums` when ``cfg.execution.band`` is set), mixed by ``blend`` (weights summing to
    1)."""
    obj, rep = cfg.objective, cfg.objective.style_loss
    per_style = []
    for s in styles:
        if cfg.execution.band:
            sums = _banded_summary(params, s, (), obj.style_layers, cfg)[1]
            per_style.append({k: rep.sums.finish(sums[k], _positions(params, s.shape, k, cfg))
                              for k in obj.style_layers})
        else:
            f = _features(params, s, obj.style_layers, cfg)
            per_style.append({k: rep.target(f[k]) for k in obj.style_layers})
    return {k: rep.mixed([t[k] for t in per_style], list(blend)) for k in obj.style_layers}


def compute_targets(params, content, styles, blend, cfg: Config):
    """Content features and the blended style targets (computed once per run and scale).

    ``content``: (1, H, W, 3); ``styles``: list of (1, h_k, w_k, 3); ``blend``: weights summing to 1."""
    return {"content": content_targets(params, content, cfg),
            "style": style_targets(params, styles, blend, cfg)}


_content_targets_jit = jax.jit(content_targets, static_argnums=(2,))
_style_targets_traced = jax.jit(style_targets, static_argnums=(3,))
_style_targets_static = jax.jit(style_targets, static_argnums=(2, 3))


def _style_targets_jit(params, styles, blend, cfg: Config):
    """:func:`style_targets` compiled; the blend is data for a weighted sum of targets, and static for a
    representation that mixes samples (their counts are shapes)."""
    if cfg.objective.style_loss.mix is None:
        return _style_targets_traced(params, styles, blend, cfg)
    return _style_targets_static(params, styles, tuple(float(w) for w in blend), cfg)


def _positions(params, shape, layer, cfg: Config) -> int:
    """H * W of the feature map at ``layer`` for images of ``shape``."""
    f = jax.eval_shape(lambda y: _features(params, y, (layer,), cfg),
                       jax.ShapeDtypeStruct(tuple(shape), jnp.float32))[layer]
    return f.shape[1] * f.shape[2]


def _style_key(weights, key):
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
    rep = obj.style_loss
    content = sum(content_loss(summary["content"][k], targets["content"][k]) for k in obj.content_layers)
    style = sum(weights["style_layers"][i] * rep.value(summary["style"][k], counts[k], targets["style"][k],
                                                        jax.random.fold_in(key, i))
                for i, k in enumerate(obj.style_layers))
    terms = {"content": weights["content"] * content, "style": weights["style"] * rep.weight * style,
             **{k: weights[k] * v for k, v in pixels.items()}}
    return sum(terms.values()), terms


def gatys_loss(params, x, targets, weights, cfg: Config, key=None):
    """Total loss and its terms for images ``x`` (N, H, W, 3): :func:`objective` on the whole image's
    features.

    ``weights``: a :class:`LossWeights` (or a dict with its entries), ``style_layers`` of shape (L,);
    ``key``: an integer folded into the picture's seed, for a sampling style representation (the evaluation's
    number)."""
    obj = cfg.objective
    f = _features(params, x, obj.content_layers + obj.style_layers, cfg)
    summary = {"content": {k: f[k] for k in obj.content_layers},
               "style": {k: obj.style_loss.summarise(f[k]) for k in obj.style_layers}}
    counts = {k: f[k].shape[1] * f[k].shape[2] for k in obj.style_layers}
    return objective(summary, counts, image_terms(x, targets), targets, weights, obj,
                     _style_key(weights, key))


class _Bands:
    """The geometry of evaluating VGG-19 at ``layers`` on images of ``shape`` (N, H, W, 3) ``band`` rows
    at a time: the band slices (:func:`band_slices`, one length for all), the whole image's feature-map
    shapes and each layer's stride, and the row mask that keeps a band's own rows of a feature map."""

    def __init__(self, params, shape, layers, cfg: Config, band: int):
        self.layers = tuple(dict.fromkeys(layers))
        halo, align = band_halo(self.layers)
        self.height = shape[1]
        self.length, slices = band_slices(self.height, -(-band // align) * align, halo, align)
        self.geometry = jnp.asarray(slices, jnp.int32)  # (bands, 3): start, stop, lo
        self.shapes = jax.eval_shape(lambda y: _features(params, y, self.layers, cfg),
                                     jax.ShapeDtypeStruct(tuple(shape), jnp.float32))
        self.strides = {k: 2 ** sum(1 for m in LAYERS[: LAYERS.index(k)] if m.startswith("pool"))
                        for k in self.layers}

    def own(self, f, name, g):
        """``f`` (band ``g``'s map at layer ``name``) with rows outside the band's own set to zero."""
        start, stop, lo = g[0], g[1], g[2]
        s = self.strides[name]
        rows = lo // s + jnp.arange(f.shape[1])
        end = jnp.where(stop == self.height, self.shapes[name].shape[1], stop // s)
        return f * ((rows >= start // s) & (rows < end))[None, :, None, None].astype(f.dtype)

    def place(self, whole, part, name, g):
        """``part`` (a band's map at ``name``, own rows only) added into ``whole`` at the band's rows."""
        at = g[2] // self.strides[name]
        old = jax.lax.dynamic_slice_in_dim(whole, at, part.shape[1], axis=1)
        return jax.lax.dynamic_update_slice_in_dim(whole, old + part, at, axis=1)

    def rows(self, whole, name, g, count: int):
        """The ``count`` rows of ``whole`` (a map at ``name``) that band ``g``'s map covers."""
        return jax.lax.dynamic_slice_in_dim(whole, g[2] // self.strides[name], count, axis=1)


def _banded_summary(params, image, content_layers, style_layers, cfg: Config):
    """``({layer: whole feature map}, {layer: Sums})`` of images (N, H, W, 3) computed ``cfg.execution.band``
    rows at a time (one ``lax.scan``): each band writes its own rows' features into the whole maps (content
    layers) and adds its own rows' sums (style layers; the representation's :class:`nst_jax.style.Sums`)."""
    rep = cfg.objective.style_loss
    if style_layers and rep.sums is None:
        raise NSTError(f"style loss {rep.name!r} is not a sum over positions and cannot be computed in "
                       "bands: use --tile none, or a smaller --size")
    b = _Bands(params, image.shape, tuple(content_layers) + tuple(style_layers), cfg, cfg.execution.band)

    def step(carry, g):
        maps, sums = carry
        f = _features(params, jax.lax.dynamic_slice_in_dim(image, g[2], b.length, axis=1), b.layers, cfg)
        maps = {k: b.place(maps[k], b.own(f[k], k, g), k, g) for k in maps}
        sums = {k: jax.tree_util.tree_map(jnp.add, sums[k], rep.sums.summarise(b.own(f[k], k, g)))
                for k in sums}
        return (maps, sums), None

    zero_map = {k: jnp.zeros(b.shapes[k].shape, jnp.float32) for k in content_layers}
    zero_sums = {k: jax.tree_util.tree_map(jnp.zeros_like, jax.eval_shape(rep.sums.summarise, b.shapes[k]))
                 for k in style_layers}
    (maps, sums), _ = jax.lax.scan(step, (zero_map, zero_sums), b.geometry)
    return maps, sums


def band_halo(layers) -> tuple[int, int]:
    """``(halo, align)`` for exact features at ``layers`` from a band of rows: every 3x3 convolution reaches
    one row further at its resolution and every pooling up to one stride further, so a band computed with
    ``halo`` extra rows on each side (rounded up to the pooling grid, ``align`` rows) has its own rows'
    features exactly as the whole image has them.  Band starts must be multiples of ``align``."""
    deepest = max(LAYERS.index(name) for name in check_layers(layers))
    stride, reach = 1, 0
    for name in LAYERS[: deepest + 1]:
        if name.startswith(("conv", "pool")):
            reach += stride
        if name.startswith("pool"):
            stride *= 2
    align = min_size(layers)
    return -(-reach // align) * align, align


def band_slices(height: int, band: int, halo: int, align: int) -> tuple[int, list[tuple[int, int, int]]]:
    """``(length, [(start, stop, lo), ...])``: bands of ``band`` own rows, each computed from the ``length``
    rows from ``lo`` -- one length for every band (one compiled band program, one loop), at least the band
    plus ``halo`` on each side, with ``lo`` on the pooling grid and the last slice ending at the image's
    last row.  ``length >= height`` means one band: the whole image."""
    length = band + 2 * halo
    length += (height - length) % align  # so that the bottom slice, ending at `height`, starts on the grid
    if length >= height:
        return height, [(0, height, 0)]
    slices = []
    for start in range(0, height, band):
        stop = min(height, start + band)
        slices.append((start, stop, min(max(0, start - halo), height - length)))
    return length, slices


def gatys_value_and_grad_banded(params, x, targets, weights, cfg: Config, key=None):
    """``((loss, terms), gradient)`` of :func:`gatys_loss` at ``x`` (N, H, W, 3), equal to
    ``jax.value_and_grad(gatys_loss, has_aux=True)`` but computed ``cfg.execution.band`` rows at a time, so
    that the network's activations are held for one band (plus its halo, :func:`band_halo`) instead of the
    image.

    :func:`objective` depends on the image through the content layers' maps and the style layers' sums over
    positions (:class:`nst_jax.style.Sums`).  Pass 1 runs the network band by band, assembling the maps from
    each band's own rows and adding up their sums; the loss follows from :func:`objective`, and so does its
    gradient with respect to the maps and sums.  Pass 2 runs each band again and back-propagates, into the
    band and its halo, that gradient dotted with the band's own share of the maps and sums; the shares add up
    over bands to the whole image's gradient (each position counted once).  The terms on the pixels
    (:func:`image_terms`) are taken on the whole image.  Each pass is one ``lax.scan``: one band's activations
    at a time."""
    obj, rep = cfg.objective, cfg.objective.style_loss
    b = _Bands(params, x.shape, obj.content_layers + obj.style_layers, cfg, cfg.execution.band)
    maps, sums = _banded_summary(params, x, obj.content_layers, obj.style_layers, cfg)
    counts = {k: b.shapes[k].shape[1] * b.shapes[k].shape[2] for k in obj.style_layers}
    pixels = image_terms(x, targets)
    dpixels = jax.grad(lambda y: sum(weights[k] * v for k, v in image_terms(y, targets).items()))(x)
    skey = _style_key(weights, key)
    (loss, terms), dsummary = jax.value_and_grad(
        lambda sm: objective(sm, counts, pixels, targets, weights, obj, skey), has_aux=True)(
            {"content": maps, "style": sums})

    def band_share(xb, g):
        """Band ``g``'s own share of the maps and sums, dotted with the objective's gradient at them."""
        f = _features(params, xb, b.layers, cfg)
        c = sum(jnp.sum(b.rows(dsummary["content"][k], k, g, f[k].shape[1]) * b.own(f[k], k, g))
                for k in obj.content_layers)
        s = sum(sum(jnp.sum(d * v) for d, v in zip(jax.tree_util.tree_leaves(dsummary["style"][k]),
                                                     jax.tree_util.tree_leaves(rep.sums.summarise(
                                                         b.own(f[k], k, g))), strict=True))
                for k in obj.style_layers)
        return c + s

    def scatter(grad, g):
        xb = jax.lax.dynamic_slice_in_dim(x, g[2], b.length, axis=1)
        gb = jax.grad(lambda v: band_share(v, g))(xb)
        old = jax.lax.dynamic_slice_in_dim(grad, g[2], b.length, axis=1)
        return jax.lax.dynamic_update_slice_in_dim(grad, old + gb, g[2], axis=1), None

    grad, _ = jax.lax.scan(scatter, dpixels, b.geometry)
    return (loss, terms), grad


# --------------------------------------------------------------------------------------------------
# the driver: compiled chunks of any solver's iterations (nst_jax.solvers)
# --------------------------------------------------------------------------------------------------

PIXEL_SCALE = solvers.PIXEL_SCALE
HISTORY = solvers.HISTORY
# The safeguard (see nst_jax.lbfgs) does not take a trial point whose loss exceeds REJECT_FACTOR x the
# current one; a non-finite loss is always refused.  math.inf (the default) takes every finite trial
# point, as torch.optim.LBFGS does: refusing finite rises made the median loss worse wherever it acted
# (BENCHMARKS.md, "Gatys").
REJECT_FACTOR = math.inf


def _split_rows(tree, image_shape, rows):
    """Every leaf shaped like the image (or a stack of images: the L-BFGS history) split by rows across
    the devices of ``rows`` (a NamedSharding of the image); the rest left to XLA."""
    if rows is None:
        return tree

    def constrain(a):
        if a.ndim >= 4 and a.shape[-4:] == tuple(image_shape):
            spec = jax.sharding.PartitionSpec(*([None] * (a.ndim - 3)), "rows")
            return jax.lax.with_sharding_constraint(a, jax.sharding.NamedSharding(rows.mesh, spec))
        return a

    return jax.tree_util.tree_map(constrain, tree)


def stack(trees):
    """Pytrees of the same structure stacked along a new leading axis: one entry per picture of a batch
    (the targets and loss weights :func:`optimize` takes)."""
    def one(*a):
        dtype = jnp.int32 if jnp.issubdtype(jnp.asarray(a[0]).dtype, jnp.integer) else jnp.float32
        return jnp.stack([jnp.asarray(v, dtype) for v in a])

    return jax.tree_util.tree_map(one, *trees)


def _batched(fn, in_axes, out_axes, n: int):
    """``jax.vmap(fn)`` over ``n`` pictures; for one picture, ``fn`` itself on the pictures' first entries
    with the axis put back (vmapping the Winograd convolutions costs 20% at 256x192 on XLA:CPU even for one
    picture: BENCHMARKS.md "Many pictures")."""
    if n > 1:
        return jax.vmap(fn, in_axes=in_axes, out_axes=out_axes)

    def one(*args):
        take = jax.tree_util.tree_map(lambda ax, a: a if ax is None else a[0], in_axes, args,
                                      is_leaf=lambda v: v is None)
        out = fn(*take)
        return jax.tree_util.tree_map(lambda ax, a: a if ax is None else a[None], out_axes, out,
                                      is_leaf=lambda v: v is None)
    return one


def _axes_tree(axes, tree):
    """``axes`` (a vmap axes prefix of ``tree``) spelled out to one entry per leaf of ``tree``."""
    return jax.tree_util.tree_map(lambda ax, sub: jax.tree_util.tree_map(lambda _: ax, sub), axes, tree,
                                  is_leaf=lambda v: v is None)


def _state_axes(solver: solvers.Solver, state):
    """``jax.vmap`` axes of a batch of solver states: 0 for every field, ``None`` for the fields the solver
    keeps in lockstep across a batch (:attr:`nst_jax.solvers.Solver.lockstep`), which stay unbatched."""
    if not solver.lockstep:
        return 0
    return type(state)(*[None if f in solver.lockstep else 0 for f in state._fields])


def _one_problem(params, t, w, cfg):
    """``value_and_grad(y, key)`` of one picture's objective (y: (1, H, W, 3)) at the whole image or by bands;
    ``key``: the evaluation's number, for a sampling style representation (else ``None``)."""
    if cfg.execution.band:
        return lambda y, key: gatys_value_and_grad_banded(params, y, t, w, cfg, key)
    return lambda y, key: jax.value_and_grad(lambda v: gatys_loss(params, v, t, w, cfg, key), has_aux=True)(y)


def _init(params, targets, weights, x, *, cfg, solver, rows=None):
    """One solver state per picture of ``x`` (N, H, W, 3), nothing evaluated (so the objective is compiled
    once, in the chunk program, whose first step evaluates at ``x``)."""
    def one(t, w, xi):
        y = xi[None]
        aux = jax.eval_shape(lambda: gatys_loss(params, y, t, w, cfg)[1])
        return _split_rows(solver.init(y * solver.scale, aux), y.shape, rows)

    shape = jax.eval_shape(one, *jax.tree_util.tree_map(lambda a: a[0], (targets, weights, x)))
    axes = _state_axes(solver, shape)
    return _batched(one, _axes_tree((0, 0, 0), (targets, weights, x)), _axes_tree(axes, shape),
                    x.shape[0])(targets, weights, x)


def _chunk(params, targets, weights, x, state, n, *, cfg, solver, rows=None):
    """``n`` iterations of every picture's own problem: ``jax.vmap`` over the pictures of a solver loop
    (``lax.fori_loop``) on one picture -- its own state, step and loss; nothing couples them."""
    scale = solver.scale

    def one(t, w, xi, st):
        vg0 = _one_problem(params, t, w, cfg)

        def body(_, carry):
            # a sampling representation draws afresh at every evaluation: the key counts evaluations
            key = carry[1].num_fun_eval if cfg.objective.style_loss.stochastic else None

            def vg(y):
                (value, terms), g = vg0(y * (1.0 / scale), key)
                return (value, terms), g * (1.0 / scale)

            return _split_rows(solver.step(vg, *carry), xi[None].shape, rows)

        y, st = jax.lax.fori_loop(0, n, body, (xi[None] * scale, st))
        return y[0] * (1.0 / scale), st

    axes = _state_axes(solver, state)
    args = (targets, weights, x, state)
    return _batched(one, _axes_tree((0, 0, 0, axes), args), _axes_tree((0, axes), (x, state)),
                    x.shape[0])(*args)


def solver_for(optimizer, learning_rate=None, history=None, history_dtype=None) -> solvers.Solver:
    """``optimizer``: a :class:`nst_jax.solvers.Solver`, or a name with its settings."""
    if isinstance(optimizer, solvers.Solver):
        return optimizer
    if optimizer == "lbfgs":
        return solvers.make_solver("lbfgs", history=history, reject=REJECT_FACTOR,
                                   learning_rate=learning_rate, history_dtype=history_dtype)
    return solvers.make_solver(optimizer, history=history, learning_rate=learning_rate,
                               history_dtype=history_dtype)


class _Programs:
    """Ahead-of-time compiled executables, keyed by shapes and static settings (never object ids).

    ``compiles`` counts real compilations in this process; a second run with the same sizes and
    settings reuses the executables.  Across processes, the persistent XLA cache (see
    :func:`nst_jax.enable_compilation_cache`) makes the compile step a cache read.
    """

    def __init__(self):
        self._cache: dict = {}
        self.compiles = 0

    def get(self, fn, static: dict, *args, donate=()):
        key = (fn.__name__, tuple(sorted(static.items(), key=lambda kv: kv[0])),
               tuple((a.shape, str(a.dtype), str(getattr(a, "sharding", "")))
                     for a in jax.tree_util.tree_leaves(args)),
               str(jax.tree_util.tree_structure(args)))
        exe = self._cache.get(key)
        if exe is None:
            exe = jax.jit(partial(fn, **static), donate_argnums=donate).lower(*args).compile()
            self._cache[key] = exe
            self.compiles += 1
        return exe

    def clear(self) -> None:
        """Drop every executable (their memory is freed once nothing else holds them)."""
        self._cache.clear()


PROGRAMS = _Programs()


def _chunk_bounds(iters: int, save_every: int | None) -> list[int]:
    ends = set(range(CHUNK, iters, CHUNK)) | {iters}
    if save_every:
        ends |= set(range(save_every, iters, save_every))
    return sorted(ends)


def optimize(params, x0, targets, weights, cfg: Config, iters: int, solver: solvers.Solver,
             callback=None, save_every=None, scale=(1, 1), t0=None, rows=None):
    """Run ``iters`` iterations of ``solver`` (:mod:`nst_jax.solvers`) on each picture of ``x0`` (N, H, W, 3),
    each its own problem: ``targets`` and ``weights`` carry one entry per picture on a leading axis
    (:func:`stack`).  One compiled program for the batch.

    ``rows``: a :func:`nst_jax.tiling.row_sharding`: the images, and every solver array shaped like them,
    split by rows across its devices; XLA partitions the convolutions (exchanging halo rows) and sums the Gram
    matrices across devices.  Returns ``(x, info)``: ``x`` (N, H, W, 3) and ``info`` with per-picture lists
    ``loss`` and ``terms`` (the objective at ``x`` clipped to [0, 1], the picture returned), ``evaluations``
    (the solver's) (and ``rejected_steps``), the iterations done and the compile and
    optimise seconds.  The loop stops early when every picture's loss is non-finite.  On Ctrl-C raises
    :class:`StylizeInterrupted` with the current iterates."""
    t0 = time.perf_counter() if t0 is None else t0
    n = int(x0.shape[0])
    x = jnp.asarray(x0, jnp.float32) if rows is None else shard_rows(np.asarray(x0, np.float32), rows)
    if rows is not None:
        params, targets, weights = replicate((params, targets, weights), rows)
    static = {"cfg": cfg, "solver": solver, "rows": rows}
    tc = time.perf_counter()
    init = PROGRAMS.get(_init, static, params, targets, weights, x)
    state = init(params, targets, weights, x)
    n0 = jnp.asarray(0, jnp.int32)
    # x and the solver state are donated: updated in place rather than copied on every call
    # (the L-BFGS history alone is 2 x 100 images a picture).
    chunk = PROGRAMS.get(_chunk, static, params, targets, weights, x, state, n0, donate=(3, 4))
    compile_s = time.perf_counter() - tc

    info = {"iterations": 0, "evaluations": [0] * n, "compile_seconds": compile_s,
            "loss": [float("nan")] * n, "terms": [{} for _ in range(n)]}
    done, boot = 0, 1  # every solver's first step only evaluates at x0
    topt = time.perf_counter()
    try:
        for end in _chunk_bounds(iters, save_every):
            x, state = chunk(params, targets, weights, x, state, jnp.asarray(end - done + boot, jnp.int32))
            boot = 0
            values = np.asarray(to_host(state.value), np.float64).reshape(n)
            terms = {k: np.asarray(to_host(v), np.float64).reshape(n) for k, v in state.aux.items()}
            info["evaluations"] = [int(e) for e in np.asarray(to_host(state.num_fun_eval)).reshape(n)]
            if hasattr(state, "num_rejected"):
                info["rejected_steps"] = [int(e) for e in np.asarray(to_host(state.num_rejected)).reshape(n)]
            done = info["iterations"] = end
            info["loss"] = [float(v) for v in values]
            info["terms"] = [{k: float(v[i]) for k, v in terms.items()} for i in range(n)]
            if callback is not None:
                due = n == 1 and bool(save_every) and (done % save_every == 0 or done == iters)
                finite = values[np.isfinite(values)]
                loss = float(finite.mean()) if finite.size else float("nan")
                callback(Event("gatys", f"iteration {done}/{iters}, loss {loss:.4g}", done, iters, scale[0],
                               scale[1], loss, info["terms"][0] if n == 1 else {}, time.perf_counter() - t0,
                               np.clip(to_host(x)[0], 0, 1) if due else None, info["evaluations"][0], n,
                               tuple(info["loss"])))
            if not np.isfinite(values).any():
                break
    except KeyboardInterrupt:
        info["optimize_seconds"] = time.perf_counter() - topt
        raise StylizeInterrupted(np.clip(to_host(x), 0, 1), info) from None
    info["optimize_seconds"] = time.perf_counter() - topt
    if done:
        # the loss of what is returned: the objective at the iterate clipped to [0, 1], by a fresh state's
        # first step (which only evaluates) through the programs already compiled; the old state goes first
        del state
        state = init(params, targets, weights, x)
        _, state = chunk(params, targets, weights, jnp.clip(x, 0.0, 1.0), state, jnp.asarray(1, jnp.int32))
        terms = {k: np.asarray(to_host(v), np.float64).reshape(n) for k, v in state.aux.items()}
        info["loss"] = [float(v) for v in np.asarray(to_host(state.value), np.float64).reshape(n)]
        info["terms"] = [{k: float(v[i]) for k, v in terms.items()} for i in range(n)]
    return x, info


# --------------------------------------------------------------------------------------------------
# the user-facing entry points
# --------------------------------------------------------------------------------------------------

# Peak memory of one evaluation (forward + backward through VGG-19 to relu5_1) per pixel, measured on
# XLA:CPU (BENCHMARKS.md "Time and memory against size"); the solver's history and the image-sized arrays
# come on top.
ACTIVATION_BYTES_PER_PIXEL = 3320
IMAGE_BYTES_PER_PIXEL = 64  # the iterate, its gradient, the solver's other image-sized arrays, targets


def footprint(history_bytes: float) -> Footprint:
    """One picture's memory (:class:`nst_jax.tiling.Footprint`) with a solver history of ``history_bytes``
    a pixel."""
    return Footprint(ACTIVATION_BYTES_PER_PIXEL, history_bytes + IMAGE_BYTES_PER_PIXEL)


def band_rows(tile, shape, layers, history_bytes: float, rows=None) -> int:
    """The band height :func:`stylize` evaluates the objective in for an image of ``shape`` (0: the whole
    image).  ``tile``: ``"none"``; a band height in px (rounded up to the pooling grid); ``"auto"``: the
    whole image when its estimated peak fits in half the memory available, else the tallest band that
    does, next to the image-sized arrays (the solver's history, ``history_bytes`` a pixel, among them)."""
    if rows is not None:
        return 0
    halo, align = band_halo(layers)
    return plan(footprint(history_bytes), shape, 1, tile=tile, batch=1, halo=halo, align=align).band


def _scale_sizes(size: int, scales: int, smallest: int) -> list[int]:
    return [max(smallest, int(round(size / 2 ** (scales - 1 - i)))) for i in range(scales)]


@dataclasses.dataclass(frozen=True)
class StylizeConfig:
    """Every setting of :func:`stylize`, frozen and validated when built (an :class:`NSTError` names the
    first bad one).  :func:`stylize` takes one whole (``config=``) and its keywords replace fields by name.

    Fields:
      size: longest side of the result in pixels (``None``: the content's own size).
      iters: iterations per scale.
      optimizer: ``"lbfgs"``, ``"adam"``, ``"lbfgsb"`` or a :class:`nst_jax.solvers.Solver`; ``None`` (the
        default): the style representation's (:attr:`nst_jax.style.StyleLoss.solver`: L-BFGS, neural-style's,
        for all but ``swd``, whose redrawn projections Adam follows better).
      learning_rate: Adam's (default 0.02); history: L-BFGS(-B)'s memory (default 100 / 10);
        history_dtype: L-BFGS's storage of the pairs, ``"float32"`` (default) or ``"bfloat16"`` (half the
        memory; BENCHMARKS.md measures the loss).  A setting the chosen solver does not take is an error.
        Each L-BFGS curvature pair costs 2 x 12 bytes per pixel.
      init: ``"content"``, ``"noise"`` (uniform white noise, seeded), ``"style"`` (the first style
        image resized to the content's shape), or an (H, W, 3) array.
      content_weight, style_weight, tv_weight: weights of the three terms (see module notes;
        defaults: :class:`LossWeights`).
      pool: ``"max"`` or ``"avg"`` in VGG-19.
      content_layers, style_layers: VGG-19 layer names.
      style_layer_weights: one weight per style layer (default: all 1).
      style_loss: the style representation, a name of :data:`nst_jax.style.STYLE_LOSSES` (``"gram"``, the
        default: Gatys et al.'s; ``"moments"``, ``"mmd-poly"``, ``"mmd-rbf"``, ``"swd"``) or a
        :class:`nst_jax.style.StyleLoss` of your own.
      style_blend: one weight per style image (normalised to sum 1; default equal).
      style_scale: style images are resized to ``style_scale * size`` (longest side).
      preserve_color: ``None``, ``"luminance"`` (keep the content's chroma) or ``"histogram"``
        (recolour the styles to the content's colour statistics first).
      scales: coarse-to-fine: ``scales`` sizes halving down from ``size``; each starts from the
        upsampled result of the previous one.
      seed: for ``init="noise"``.
      remat: recompute each VGG block's activations in the backward pass instead of storing them.
        Measured on XLA:CPU it does not lower the peak for this objective (see BENCHMARKS.md):
        the L-BFGS history and the first block's activations dominate.
      devices: ``None`` or 1 (one device), N or ``"all"``: the image and the solver's history split by
        rows across N devices (:func:`nst_jax.tiling.row_sharding`); each scale's height must be a
        multiple of N.
      tile: ``"auto"`` (default), ``"none"`` or a band height in px: evaluate the objective a band of rows
        at a time (:func:`gatys_value_and_grad_banded`: the same loss and gradient, the network's
        activations held for one band); ``"auto"`` only when the whole image would not fit
        (:func:`band_rows`).  Not with ``devices``.
      save_every: also pass the current image to the callback every this many iterations.
    """

    size: int | None = 512
    iters: int = 500
    optimizer: Any = None
    init: Any = "content"
    content_weight: float = LossWeights.content
    style_weight: float = LossWeights.style
    tv_weight: float = LossWeights.tv
    pool: str = "max"
    content_layers: tuple[str, ...] = CONTENT_LAYERS
    style_layers: tuple[str, ...] = STYLE_LAYERS
    style_layer_weights: tuple[float, ...] | None = None
    style_loss: Any = "gram"
    style_blend: tuple[float, ...] | None = None
    style_scale: float = 1.0
    preserve_color: str | None = None
    scales: int = 1
    seed: int = 0
    learning_rate: float | None = None
    history: int | None = None
    history_dtype: str | None = None
    remat: bool = False
    devices: Any = None
    tile: Any = "auto"
    save_every: int | None = None

    def __post_init__(self):
        freeze(self, "content_layers", "style_layers", "style_layer_weights", "style_blend")
        object.__setattr__(self, "content_layers", check_layers(self.content_layers))
        object.__setattr__(self, "style_layers", check_layers(self.style_layers))
        if self.iters < 1:
            raise NSTError(f"iters must be at least 1, not {self.iters}")
        if self.scales < 1:
            raise NSTError(f"scales must be at least 1, not {self.scales}")
        if self.style_scale <= 0:
            raise NSTError(f"style scale must be positive, not {self.style_scale}")
        if self.save_every is not None and self.save_every < 1:
            raise NSTError(f"save-every must be at least 1, not {self.save_every}")
        if self.pool not in ("max", "avg"):
            raise NSTError(f"pool must be 'max' or 'avg', not {self.pool!r}")
        if isinstance(self.init, str) and self.init not in ("content", "noise", "style"):
            raise NSTError(f"init must be 'content', 'noise', 'style' or an image, not {self.init!r}")
        im.check_preserve_color(self.preserve_color)
        n_layers, layer_weights = len(self.style_layers), self.style_layer_weights
        if layer_weights is not None and len(layer_weights) != n_layers:
            raise NSTError(f"{len(layer_weights)} style layer weights for {n_layers} style layers")
        check_blend(self.style_blend)
        object.__setattr__(self, "tile", parse_tile(self.tile))
        rep = style_loss(self.style_loss)
        if rep.sums is None and isinstance(self.tile, int):
            raise NSTError(f"style loss {rep.name!r} is not a sum over positions and cannot be computed in "
                           "bands: use --tile none or auto")
        solver_for(self.solver_name, self.learning_rate, self.history, self.history_dtype)  # its settings

    @property
    def solver_name(self):
        """``optimizer``, or when it is ``None`` the style representation's own default solver."""
        return style_loss(self.style_loss).solver if self.optimizer is None else self.optimizer

    @property
    def loss_weights(self) -> LossWeights:
        return LossWeights(self.content_weight, self.style_weight, self.tv_weight, self.style_layer_weights,
                           self.seed)


STYLIZE_CONFIG = StylizeConfig()

# The settings one picture of a batch may have of its own: data of the compiled program, not its shape.
PER_PICTURE = ("content_weight", "style_weight", "tv_weight", "style_layer_weights", "style_blend", "seed",
               "init")


@dataclasses.dataclass(frozen=True)
class Picture:
    """One independent problem of :func:`stylize_many`: a ``content`` image (H, W, 3), its ``style`` image or
    list of style images, and its own ``settings`` (:data:`PER_PICTURE` fields, e.g. one value of a sweep)."""

    content: Any
    style: Any
    settings: dict = dataclasses.field(default_factory=dict)


class Result(NamedTuple):
    """What :func:`stylize_many` yields per picture: its ``index`` in the input, and either the ``image`` and
    its ``report`` or the ``error`` (an :class:`NSTError`) that stopped it."""

    index: int
    image: Any = None
    report: dict | None = None
    error: NSTError | None = None


@dataclasses.dataclass
class _Job:
    """A picture prepared for a batch: its config, images as the run uses them, and its scale shapes."""

    index: int
    conf: StylizeConfig
    content: np.ndarray
    styles: list
    blend: list
    shapes: tuple


def _solver(conf: StylizeConfig) -> solvers.Solver:
    solver = solver_for(conf.solver_name, conf.learning_rate, conf.history, conf.history_dtype)
    settings = dict(solver.settings)
    if solver.name == "lbfgs" and settings["history"] > conf.iters:
        # at most one curvature pair is stored per iteration, so a longer memory is never filled: the same
        # iterates with less memory (2 images per pair; at 2048 px, 100 pairs would be ~7 GB)
        solver = solvers.make_solver("lbfgs", **{**settings, "history": conf.iters})
    return solver


def _history_bytes(solver: solvers.Solver) -> float:
    """The solver's history per pixel: two images a curvature pair, float32 (bfloat16: half); Adam: none."""
    settings = dict(solver.settings)
    return settings.get("history", 0) * (12 if settings.get("history_dtype") == "bfloat16" else 24)


def plan_scales(content_shape, conf: StylizeConfig) -> tuple[tuple[int, int], ...]:
    """The (H, W) of each scale, coarse to fine, for a content image of ``content_shape``; an
    :class:`NSTError` when the result or its coarsest scale is smaller than the chosen layers need."""
    full = im.fit_shape(content_shape, conf.size) if conf.size else tuple(content_shape[:2])
    need = max(min_size(conf.content_layers), min_size(conf.style_layers))
    if min(full) < need:
        raise NSTError(f"the result would be {full[0]}x{full[1]} px, smaller than the {need} px the "
                       f"chosen VGG-19 layers need; use a larger --size")
    longest = max(full)
    sizes = _scale_sizes(longest, conf.scales, longest * need // min(full) + 1)
    return tuple(im.fit_shape(content_shape, side) if k < len(sizes) else tuple(full)
                 for k, side in enumerate(sizes, 1))


def _style_side(conf: StylizeConfig, shape) -> int:
    need = max(min_size(conf.content_layers), min_size(conf.style_layers))
    return max(need, int(round(max(shape) * conf.style_scale)))


def _prepare(index: int, picture: Picture, conf: StylizeConfig) -> _Job:
    """Validate one picture and bring its images into the run's form (an :class:`NSTError` names what is
    wrong)."""
    unknown = sorted(set(picture.settings) - set(PER_PICTURE))
    if unknown:
        raise NSTError(f"a picture of a batch cannot have its own {', '.join(unknown)}; "
                       f"only {', '.join(PER_PICTURE)}")
    conf = with_fields(conf, dict(picture.settings), "stylize setting")
    content = np.asarray(picture.content, np.float32)
    if content.ndim != 3 or content.shape[-1] != 3:
        raise NSTError(f"a content image must be (H, W, 3), not {content.shape}")
    style = picture.style
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    if not styles:
        raise NSTError("at least one style image is needed")
    blend = blend_weights(conf.style_blend, len(styles))
    styles = im.preserve_color(conf.preserve_color, content,
                               styles=[np.asarray(s, np.float32) for s in styles])
    shapes = plan_scales(content.shape, conf)
    need = max(min_size(conf.content_layers), min_size(conf.style_layers))
    for k, shape in enumerate(shapes, 1):
        side = _style_side(conf, shape)
        short = min(min(im.fit_shape(s.shape, side)) for s in styles)
        if short < need:
            many = len(shapes) > 1
            at = f"at scale {k} of {len(shapes)} ({shape[0]}x{shape[1]} px) " if many else ""
            fix = "raise --style-scale" + (", use fewer --scales or a larger --size" if many else "")
            raise NSTError(f"{at}a style image would be {short} px on its shorter side, less than the "
                           f"{need} px the chosen layers need: {fix}")
    if isinstance(conf.init, np.ndarray) and (conf.init.ndim != 3 or conf.init.shape[-1] != 3):
        raise NSTError(f"init image must be (H, W, 3), got {conf.init.shape}")
    return _Job(index, conf, content, styles, blend, shapes)


def stylize_many(pictures, config: StylizeConfig = STYLIZE_CONFIG, *, batch: int | None = None, weights=None,
                 callback: Callable[[Event], None] | None = None, **settings):
    """Stylise many pictures, each its own independent problem, a batch of them in one compiled program.

    Args:
      pictures: :class:`Picture` s (content, style(s), and each one's own :data:`PER_PICTURE` settings).
      config, **settings: the :class:`StylizeConfig` every picture shares (as for :func:`stylize`).
      batch: pictures run at once (``jax.vmap`` over their problems: each its own solver state, step and
        loss); ``None``: as many as fit in the memory available on a GPU or TPU, one at a time on a CPU
        (:func:`nst_jax.tiling.plan`).  Pictures whose scales have different shapes run in different
        batches, never padded.
      weights: VGG-19 weights (path or pytree; default: the fetched ImageNet weights).
      callback: receives an :class:`nst_jax.runinfo.Event` after every chunk of iterations of a batch
        (``batch``: its size; ``losses``: each picture's loss).

    Yields:
      a :class:`Result` per picture as its batch finishes (a picture that cannot run yields its error
      first; the others still run).  On Ctrl-C raises :class:`StylizeInterrupted` for the running batch.
    """
    t0 = time.perf_counter()
    conf = with_fields(config, settings, "stylize setting")
    if batch is not None and int(batch) < 1:
        raise NSTError(f"batch must be at least 1, not {batch}")
    solver = _solver(conf)
    rows = row_sharding(conf.devices)
    if rows is not None and conf.tile not in ("auto", "none"):
        raise NSTError("tile and devices cannot be combined: split across devices, or tile on one")
    params = weights if isinstance(weights, dict) and "conv1_1" in weights else vgg19_params(weights)
    params = with_winograd(params)
    groups: dict[tuple, list[_Job]] = {}
    for i, picture in enumerate(pictures):
        try:
            job = _prepare(i, picture, conf)
        except NSTError as e:
            yield Result(i, error=e)
            continue
        groups.setdefault(job.shapes, []).append(job)
    layers = conf.content_layers + conf.style_layers
    halo, align = band_halo(layers)
    style_grams: dict = {}  # each style set's targets once per side and setting, whatever the batches
    for shapes, jobs in groups.items():
        size = plan(footprint(_history_bytes(solver)), shapes[-1], len(jobs), tile=conf.tile, batch=batch,
                    halo=halo, align=align).batch
        for k in range(0, len(jobs), size):
            yield from _run_batch(jobs[k:k + size], conf, solver, params, callback, t0, rows, style_grams)
            t0 = time.perf_counter()


def _run_batch(jobs: list[_Job], conf: StylizeConfig, solver, params, callback, t0, rows, style_grams):
    """Every scale of one batch of same-shaped pictures: targets, initial images, :func:`optimize`; then
    each picture's result and report."""
    n, shapes = len(jobs), jobs[0].shapes
    cfg = Config(Objective(conf.content_layers, conf.style_layers, conf.pool, style_loss(conf.style_loss)),
                 Execution(remat=bool(conf.remat)))
    wts = stack([j.conf.loss_weights.as_arrays(len(conf.style_layers)) for j in jobs])
    halo, align = band_halo(conf.content_layers + conf.style_layers)
    fp = footprint(_history_bytes(solver))
    reports = [{"scales": [], "evaluations": 0} for _ in jobs]
    timing = {"compile_seconds": 0.0, "optimize_seconds": 0.0}
    x = None
    for k, shape in enumerate(shapes, 1):
        band = 0 if rows is not None else plan(fp, shape, n, tile=conf.tile, batch=n, halo=halo,
                                               align=align).band
        if band and cfg.objective.style_loss.sums is None:
            raise NSTError(f"{n} picture(s) of {shape[0]}x{shape[1]} px do not fit in memory whole, and "
                           f"style loss {cfg.objective.style_loss.name!r} cannot be computed in bands: use a "
                           "smaller --size or --batch, or a style loss that is a sum over positions (gram, "
                           "moments, mmd-poly)")
        bcfg = cfg.with_band(band)
        c = np.stack([im.resize(j.content, shape) for j in jobs])
        targets = _batch_targets(params, c, jobs, _style_side(conf, shape), bcfg, style_grams)
        if x is None:
            x0 = np.stack([_initial_image(j.conf.init, c[i:i + 1], j.styles[0], j.conf.seed)[0]
                           for i, j in enumerate(jobs)])
        else:
            x0 = np.stack([im.resize(a, shape) for a in to_host(x)])
        try:
            x, info = optimize(params, x0, targets, wts, bcfg, conf.iters, solver, callback, conf.save_every,
                               (k, len(shapes)), t0, rows)
        except StylizeInterrupted as e:
            _add_scale(reports, timing, e.report, shape, band)
            images = [im.preserve_color(conf.preserve_color, j.content, stylised=e.images[i])
                      for i, j in enumerate(jobs)]
            raise StylizeInterrupted(images, [_picture_report(j, r, timing, solver, rows, t0, n)
                                              for j, r in zip(jobs, reports, strict=True)]) from None
        _add_scale(reports, timing, info, shape, band)
    raw = to_host(x)
    for i, (job, rep) in enumerate(zip(jobs, reports, strict=True)):
        report = _picture_report(job, rep, timing, solver, rows, t0, n)
        if not math.isfinite(report["loss"]):
            yield Result(job.index, error=NSTError(
                "the optimisation diverged (loss is not finite); lower the style or TV weight, or use "
                "--optimizer adam"))
            continue
        report["pixels_outside_range"] = float(np.mean((raw[i] < -1 / 255) | (raw[i] > 1 + 1 / 255)))
        image = im.preserve_color(conf.preserve_color, job.content, stylised=np.clip(raw[i], 0, 1))
        yield Result(job.index, image, report)


def _batch_targets(params, c, jobs, style_side: int, cfg: Config, seen: dict):
    """One picture's targets per entry of a leading axis: the content maps of ``c`` (N, H, W, 3) in one pass,
    each distinct style set's Gram matrices once (kept in ``seen`` for the next batches)."""
    maps = _content_targets_jit(params, jnp.asarray(c), cfg)
    grams = []
    for j in jobs:
        key = (tuple(id(s) for s in j.styles), tuple(j.blend), style_side, cfg)
        if key not in seen:
            s = [jnp.asarray(im.resize_longest(st, style_side))[None] for st in j.styles]
            seen[key] = _style_targets_jit(params, s, j.blend, cfg)
        grams.append(seen[key])
    return {"content": {k: v[:, None] for k, v in maps.items()}, "style": stack(grams)}


def _add_scale(reports, timing, info, shape, band):
    """One scale's per-picture entries (from :func:`optimize`'s ``info``) added to each picture's report."""
    for i, rep in enumerate(reports):
        entry = {"height": shape[0], "width": shape[1], "iterations": info.get("iterations", 0),
                 "evaluations": info["evaluations"][i], "loss": info["loss"][i], "terms": info["terms"][i],
                 "compile_seconds": info.get("compile_seconds", 0.0),
                 "optimize_seconds": info.get("optimize_seconds", 0.0), "band_rows": band}
        if "rejected_steps" in info:
            entry["rejected_steps"] = info["rejected_steps"][i]
        rep["scales"].append(entry)
        rep["evaluations"] += entry["evaluations"]
    timing["compile_seconds"] += info.get("compile_seconds", 0.0)
    timing["optimize_seconds"] += info.get("optimize_seconds", 0.0)


def _picture_report(job: _Job, rep: dict, timing: dict, solver, rows, t0, batch: int) -> dict:
    """The report every method returns (:func:`nst_jax.runinfo.report`), then Gatys's own entries; the
    timings are the batch's."""
    last = rep["scales"][-1]
    seconds = time.perf_counter() - t0
    core = make_report("gatys", t0, {"targets_and_setup": seconds - timing["compile_seconds"]
                                     - timing["optimize_seconds"], "compile": timing["compile_seconds"],
                                     "optimize": timing["optimize_seconds"]},
                       (last["height"], last["width"]), 1 if rows is None else rows.mesh.size,
                       last["band_rows"] or None, job.conf.preserve_color)
    return {**core, "optimizer": solver.name, "solver_settings": dict(solver.settings),
            "style_loss": style_loss(job.conf.style_loss).name, "iterations_per_scale": job.conf.iters,
            "iterations": last["iterations"],
            "scales": rep["scales"], "evaluations": rep["evaluations"], "loss": last["loss"],
            "terms": last["terms"], "compile_seconds": timing["compile_seconds"],
            "optimize_seconds": timing["optimize_seconds"], "batch": batch}


def stylize(content, style, config: StylizeConfig = STYLIZE_CONFIG, *, weights=None,
            callback: Callable[[Event], None] | None = None, **settings):
    """Stylise ``content`` with one or more ``style`` images (Gatys et al.): :func:`stylize_many` with one
    picture.

    Args:
      content: (H, W, 3) float RGB in [0, 1].
      style: one (h, w, 3) image or a list of them.
      config: a :class:`StylizeConfig` (default: neural-style's settings).
      weights: VGG-19 weights (path or pytree; default: the fetched ImageNet weights).
      callback: receives an :class:`nst_jax.runinfo.Event` (as every method's callback) after every chunk
        of iterations.
      **settings: :class:`StylizeConfig` fields by name (``iters=300``), replacing ``config``'s.

    Returns:
      ``(image, report)``: (H, W, 3) float32 in [0, 1] and a dict of timings, evaluations and losses.
    """
    (result,) = stylize_many([Picture(content, style)], config, batch=1, weights=weights, callback=callback,
                             **settings)
    if result.error is not None:
        raise result.error
    return result.image, result.report


def _initial_image(init, content, style, seed):
    if isinstance(init, np.ndarray):
        return im.resize(init.astype(np.float32), content.shape[1:3])[None]
    if init == "content":
        return content
    if init == "noise":
        return np.asarray(jax.random.uniform(jax.random.key(seed), content.shape, jnp.float32))
    if init == "style":
        return im.resize(style, content.shape[1:3])[None]
    raise NSTError(f"init must be 'content', 'noise', 'style' or an image path, not {init!r}")
