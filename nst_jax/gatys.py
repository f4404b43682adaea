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
iteration.  Between chunks Python reports progress (a callback receiving an :class:`Iterate`), saves
intermediate images, and can be interrupted (Ctrl-C) with the current iterate kept.

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
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from . import image as im
from . import solvers
from .config import blend_weights, check_blend, freeze, with_fields
from .errors import NSTError
from .losses import GRAM_PRECISION, content_loss, gram_matrix, style_loss, total_variation
from .runinfo import Event
from .runinfo import report as make_report
from .tiling import needs_tiling, parse_tile, replicate, row_sharding, shard_rows, to_host
from .vgg import LAYERS, check_layers, min_size, vgg19_features, vgg19_params, with_winograd

CONTENT_LAYERS = ("relu4_2",)
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CHUNK = 10  # iterations per compiled call between progress reports


@dataclasses.dataclass(frozen=True)
class Config:
    """The static part of the objective: what changes the compiled program."""

    content_layers: tuple[str, ...] = CONTENT_LAYERS
    style_layers: tuple[str, ...] = STYLE_LAYERS
    pool: str = "max"
    tv_kind: str = "l2"
    remat: bool = False
    conv: str = "auto"
    band: int = 0  # > 0: the objective a band of this many rows at a time (gatys_value_and_grad_banded)


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

    def __getitem__(self, name):  # weights["content"], as for the plain dict the objective also takes
        return getattr(self, name)

    def as_arrays(self, n_style_layers: int) -> LossWeights:
        layers = np.ones(n_style_layers) if self.style_layers is None else self.style_layers
        return LossWeights(jnp.float32(self.content), jnp.float32(self.style), jnp.float32(self.tv),
                           jnp.asarray(layers, jnp.float32))


Iterate = Event  # what the callback receives (nst_jax.runinfo.Event; the name it had before)


class StylizeInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`stylize`; carries the current iterate and the report so far."""

    def __init__(self, image, report):
        super().__init__("interrupted")
        self.image, self.report = image, report


# --------------------------------------------------------------------------------------------------
# the objective
# --------------------------------------------------------------------------------------------------

def compute_targets(params, content, styles, blend, cfg: Config):
    """Content features and the blended style Gram matrices (computed once per run and scale).

    ``content``: (1, H, W, 3); ``styles``: list of (1, h_k, w_k, 3); ``blend``: weights summing to 1.
    """
    c = vgg19_features(params, content, cfg.content_layers, cfg.pool, conv=cfg.conv)
    grams = {name: 0.0 for name in cfg.style_layers}
    for s, w in zip(styles, blend, strict=True):
        f = vgg19_features(params, s, cfg.style_layers, cfg.pool, conv=cfg.conv)
        for name in cfg.style_layers:
            grams[name] = grams[name] + w * gram_matrix(f[name])
    return {"content": c, "style": grams}


_targets_jit = jax.jit(compute_targets, static_argnums=(4,))


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
        def features(y):
            return vgg19_features(params, y, self.layers, cfg.pool, conv=cfg.conv)

        self.shapes = jax.eval_shape(features, jax.ShapeDtypeStruct(tuple(shape), jnp.float32))
        self.strides = {k: 2 ** sum(1 for m in LAYERS[: LAYERS.index(k)] if m.startswith("pool"))
                        for k in self.layers}

    def own(self, f, name, g):
        """``f`` (band ``g``'s map at layer ``name``) with rows outside the band's own set to zero."""
        start, stop, lo = g[0], g[1], g[2]
        s = self.strides[name]
        rows = lo // s + jnp.arange(f.shape[1])
        end = jnp.where(stop == self.height, self.shapes[name].shape[1], stop // s)
        return f * ((rows >= start // s) & (rows < end))[None, :, None, None].astype(f.dtype)

    def gram_sum(self, f, name, g):
        """Band ``g``'s own rows' contribution to the (unnormalised) Gram matrix at layer ``name``."""
        own = self.own(f, name, g)
        a = own.reshape(own.shape[0], -1, own.shape[-1])
        return jnp.einsum("npc,npd->ncd", a, f.reshape(a.shape), precision=GRAM_PRECISION)


def _banded_features(params, image, content_layers, style_layers, cfg: Config, band: int):
    """``({layer: whole feature map}, {layer: Gram matrix})`` of images (N, H, W, 3) computed ``band`` rows
    at a time (one ``lax.scan``): each band writes its own rows' features into the whole maps (content
    layers) and adds its own rows' Gram sums (style layers)."""
    b = _Bands(params, image.shape, tuple(content_layers) + tuple(style_layers), cfg, band)

    def step(carry, g):
        maps, grams = carry
        f = vgg19_features(params, jax.lax.dynamic_slice_in_dim(image, g[2], b.length, axis=1), b.layers,
                           cfg.pool, conv=cfg.conv)
        at = {k: g[2] // b.strides[k] for k in maps}
        maps = {k: jax.lax.dynamic_update_slice_in_dim(
            maps[k], b.own(f[k], k, g) + jax.lax.dynamic_slice_in_dim(maps[k], at[k], f[k].shape[1], axis=1),
            at[k], axis=1) for k in maps}
        return (maps, {k: grams[k] + b.gram_sum(f[k], k, g) for k in grams}), None

    n = image.shape[0]
    zero = ({k: jnp.zeros(b.shapes[k].shape, jnp.float32) for k in content_layers},
            {k: jnp.zeros((n, b.shapes[k].shape[-1], b.shapes[k].shape[-1]), jnp.float32)
             for k in style_layers})
    (maps, grams), _ = jax.lax.scan(step, zero, b.geometry)
    return maps, {k: v / _gram_norm(b.shapes[k]) for k, v in grams.items()}


def compute_targets_banded(params, content, styles, blend, cfg: Config):
    """:func:`compute_targets`, each image ``cfg.band`` rows at a time (the same targets; the network's
    activations held for one band)."""
    maps, _ = _banded_features(params, content, cfg.content_layers, (), cfg, cfg.band)
    grams = {name: 0.0 for name in cfg.style_layers}
    for s, w in zip(styles, blend, strict=True):
        _, style_grams = _banded_features(params, s, (), cfg.style_layers, cfg, cfg.band)
        for name, g in style_grams.items():
            grams[name] = grams[name] + w * g
    return {"content": maps, "style": grams}


_targets_banded_jit = jax.jit(compute_targets_banded, static_argnums=(4,))


def gatys_loss(params, x, targets, weights, cfg: Config):
    """Total loss and its terms for images ``x`` (N, H, W, 3).

    ``weights``: a :class:`LossWeights` (or a dict with its four entries), ``style_layers`` of shape (L,).
    """
    layers = tuple(dict.fromkeys(cfg.content_layers + cfg.style_layers))
    f = vgg19_features(params, x, layers, cfg.pool, remat=cfg.remat, conv=cfg.conv)
    c = sum(content_loss(f[n], targets["content"][n]) for n in cfg.content_layers)
    s = sum(weights["style_layers"][i] * style_loss(gram_matrix(f[n]), targets["style"][n])
            for i, n in enumerate(cfg.style_layers))
    tv = total_variation(x * 255.0, cfg.tv_kind)
    terms = {"content": weights["content"] * c, "style": weights["style"] * s,
             "tv": weights["tv"] * tv}
    return terms["content"] + terms["style"] + terms["tv"], terms


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


def _gram_norm(shape) -> int:
    """C * H * W of an (N, H, W, C) feature map: :func:`nst_jax.losses.gram_matrix`'s normalisation."""
    return shape.shape[1] * shape.shape[2] * shape.shape[3]


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


def gatys_value_and_grad_banded(params, x, targets, weights, cfg: Config):
    """``((loss, terms), gradient)`` of :func:`gatys_loss` at ``x`` (N, H, W, 3), equal to
    ``jax.value_and_grad(gatys_loss, has_aux=True)`` but computed ``cfg.band`` rows at a time, so that the
    network's activations are held for one band (plus its halo, :func:`band_halo`) instead of the image.

    The objective is a sum over pixel positions (content) plus functions of Gram matrices, which are
    themselves sums over positions.  Pass 1 runs the network band by band, assembling the content layers'
    maps from each band's own rows and adding up their Gram sums (a row mask: every band has the same
    shape, :func:`band_slices`); the loss follows as :func:`gatys_loss` computes it, and so does dL/dG.
    Pass 2 runs each band again and back-propagates, into the band and its halo, the band's content error and
    ``<dL/dG, G_band>``; these add up over bands to the whole image's gradient (each position's features
    counted once).  The TV term is taken on the whole image.  Each pass is one ``lax.scan``: one band's
    activations at a time."""
    b = _Bands(params, x.shape, cfg.content_layers + cfg.style_layers, cfg, cfg.band)

    def band_terms(xb, g, dgram):
        """Band ``g`` (start, stop, lo), computed from ``xb`` (its ``length`` rows from ``lo``): the weighted
        content error of its own rows (normalised as the whole image's mean) plus ``<dL/dG, G_band>``."""
        f = vgg19_features(params, xb, b.layers, cfg.pool, conv=cfg.conv)
        content = 0.0
        for name in cfg.content_layers:
            target = jax.lax.dynamic_slice_in_dim(targets["content"][name], g[2] // b.strides[name],
                                                  f[name].shape[1], axis=1)
            content = content + jnp.sum(b.own(f[name] - target, name, g) ** 2) / b.shapes[name].size
        style = sum(jnp.sum(dgram[k] * b.gram_sum(f[k], k, g)) / _gram_norm(b.shapes[k])
                    for k in cfg.style_layers)
        return weights["content"] * content + style

    # pass 1: the content layers' maps and the Gram matrices, band by band
    maps, grams = _banded_features(params, x, cfg.content_layers, cfg.style_layers, cfg, cfg.band)
    content = sum(content_loss(maps[n], targets["content"][n]) for n in cfg.content_layers)

    def style_of(g):
        return sum(weights["style_layers"][i] * style_loss(g[k], targets["style"][k])
                   for i, k in enumerate(cfg.style_layers))

    style, dstyle = jax.value_and_grad(style_of)(grams)
    dgram = {k: weights["style"] * v for k, v in dstyle.items()}
    tv, dtv = jax.value_and_grad(lambda y: total_variation(y * 255.0, cfg.tv_kind))(x)

    # pass 2: each band's share of the gradient, added into the band and its halo
    def scatter(grad, g):
        xb = jax.lax.dynamic_slice_in_dim(x, g[2], b.length, axis=1)
        gb = jax.grad(lambda v: band_terms(v, g, dgram))(xb)
        old = jax.lax.dynamic_slice_in_dim(grad, g[2], b.length, axis=1)
        return jax.lax.dynamic_update_slice_in_dim(grad, old + gb, g[2], axis=1), None

    grad, _ = jax.lax.scan(scatter, weights["tv"] * dtv, b.geometry)
    terms = {"content": weights["content"] * content, "style": weights["style"] * style,
             "tv": weights["tv"] * tv}
    return (terms["content"] + terms["style"] + terms["tv"], terms), grad


# --------------------------------------------------------------------------------------------------
# the driver: compiled chunks of any solver's iterations (nst_jax.solvers)
# --------------------------------------------------------------------------------------------------

PIXEL_SCALE = solvers.PIXEL_SCALE
HISTORY = solvers.HISTORY
# The safeguard (see nst_jax.lbfgs) does not take a trial point whose loss exceeds REJECT_FACTOR x the
# current one; a non-finite loss is always refused.  math.inf (the default) takes every finite trial
# point, as torch.optim.LBFGS does: wherever refusing finite rises acted, it made the median loss worse
# (factor 10: +0.9% after 100 iterations at 256 px; factor 1: +0.9% at 256 and 512 px; BENCHMARKS.md).
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


def _init(params, targets, weights, x, *, cfg, solver, rows=None):
    """A solver state at ``x`` with nothing evaluated (no evaluation here, so the objective is
    compiled once, in the chunk program); the chunk's first step evaluates at ``x``."""
    aux = jax.eval_shape(lambda: gatys_loss(params, x, targets, weights, cfg)[1])
    return _split_rows(solver.init(x * solver.scale, aux), x.shape, rows)


def _chunk(params, targets, weights, x, state, n, *, cfg, solver, rows=None):
    scale = solver.scale
    if cfg.band:
        def vg(y):
            (value, terms), g = gatys_value_and_grad_banded(params, y * (1.0 / scale), targets, weights, cfg)
            return (value, terms), g * (1.0 / scale)
    else:
        vg = jax.value_and_grad(lambda y: gatys_loss(params, y * (1.0 / scale), targets, weights, cfg),
                                has_aux=True)

    def body(_, carry):
        return _split_rows(solver.step(vg, *carry), x.shape, rows)

    y, state = jax.lax.fori_loop(0, n, body, (x * scale, state))
    return y * (1.0 / scale), state


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


PROGRAMS = _Programs()


def _chunk_bounds(iters: int, save_every: int | None) -> list[int]:
    ends = set(range(CHUNK, iters, CHUNK)) | {iters}
    if save_every:
        ends |= set(range(save_every, iters, save_every))
    return sorted(ends)


def optimize(params, x0, targets, weights, cfg: Config, iters: int, solver: solvers.Solver,
             callback=None, save_every=None, scale=(1, 1), t0=None, rows=None):
    """Run ``iters`` iterations of ``solver`` (:mod:`nst_jax.solvers`) from ``x0`` (1, H, W, 3).

    ``rows``: a :func:`nst_jax.tiling.row_sharding`: the image, and every solver array shaped like it,
    split by rows across its devices; XLA partitions the convolutions (exchanging halo rows) and sums the Gram
    matrices across devices.  Returns ``(x, info)`` with ``info`` holding loss, terms, evaluations,
    compile and optimise seconds.  On Ctrl-C raises :class:`StylizeInterrupted` with the current iterate.
    """
    t0 = time.perf_counter() if t0 is None else t0
    x = jnp.asarray(x0, jnp.float32) if rows is None else shard_rows(np.asarray(x0, np.float32), rows)
    if rows is not None:
        params, targets, weights = replicate((params, targets, weights), rows)
    static = {"cfg": cfg, "solver": solver, "rows": rows}
    tc = time.perf_counter()
    init = PROGRAMS.get(_init, static, params, targets, weights, x)
    state = init(params, targets, weights, x)
    n0 = jnp.asarray(0, jnp.int32)
    # x and the solver state are donated: updated in place rather than copied on every call
    # (the L-BFGS history alone is 2 x 100 images).
    chunk = PROGRAMS.get(_chunk, static, params, targets, weights, x, state, n0, donate=(3, 4))
    compile_s = time.perf_counter() - tc

    info = {"iterations": 0, "evaluations": 0, "compile_seconds": compile_s}
    done, value, terms = 0, float("nan"), {}
    boot = 1  # every solver's first step only evaluates at x0
    topt = time.perf_counter()
    try:
        for end in _chunk_bounds(iters, save_every):
            x, state = chunk(params, targets, weights, x, state, jnp.asarray(end - done + boot, jnp.int32))
            boot = 0
            value, terms = state.value, state.aux
            info["evaluations"] = int(state.num_fun_eval)
            if hasattr(state, "num_rejected"):
                info["rejected_steps"] = int(state.num_rejected)
            done = end
            info["iterations"] = done
            value = float(value)
            if not math.isfinite(value):
                raise NSTError("the optimisation diverged (loss is not finite); lower the style or "
                               "TV weight, or use --optimizer adam")
            if callback is not None:
                due = bool(save_every) and (done % save_every == 0 or done == iters)
                callback(Event("gatys", f"iteration {done}/{iters}, loss {value:.4g}", done, iters, scale[0],
                               scale[1], value, {k: float(v) for k, v in terms.items()},
                               time.perf_counter() - t0, np.clip(to_host(x)[0], 0, 1) if due else None,
                               info["evaluations"]))
    except KeyboardInterrupt:
        info["optimize_seconds"] = time.perf_counter() - topt
        raise StylizeInterrupted(np.clip(to_host(x)[0], 0, 1), info) from None
    info["optimize_seconds"] = time.perf_counter() - topt
    info["loss"] = value
    info["terms"] = {k: float(v) for k, v in terms.items()}
    return x, info


# --------------------------------------------------------------------------------------------------
# the user-facing entry point
# --------------------------------------------------------------------------------------------------

# Peak memory of one evaluation (forward + backward through VGG-19 to relu5_1) per pixel, measured on
# XLA:CPU (BENCHMARKS.md "Gatys memory": 5.72 kB/px with a 100-pair history, of which 2.4 kB is the history).
ACTIVATION_BYTES_PER_PIXEL = 3320


def band_rows(tile, shape, layers, history_bytes: float, rows=None) -> int:
    """The band height :func:`stylize` evaluates the objective in for an image of ``shape`` (0: the whole
    image).  ``tile``: ``"none"``; a band height in px (rounded up to the pooling grid); ``"auto"``: the
    whole image when its estimated peak fits in half the memory available, else the tallest band that
    does, next to the image-sized arrays (the solver's history, ``history_bytes`` a pixel, among them)."""
    height, width = shape
    if tile == "none" or rows is not None:
        return 0
    halo, align = band_halo(layers)
    pixels = height * width
    fixed = pixels * (history_bytes + 64)  # the solver's history, the iterate, gradient, targets
    if tile == "auto":
        if not needs_tiling("auto", pixels, ACTIVATION_BYTES_PER_PIXEL, fixed):
            return 0
        from .tiling import available_bytes

        room = 0.5 * available_bytes() - fixed
        band = int(room // (width * ACTIVATION_BYTES_PER_PIXEL)) - 2 * halo
        band = max(align, band // align * align)
    else:
        band = -(-int(tile) // align) * align
    return 0 if band >= height else band


def _scale_sizes(size: int, scales: int, smallest: int) -> list[int]:
    sizes = [max(smallest, int(round(size / 2 ** (scales - 1 - i)))) for i in range(scales)]
    return sizes


@dataclasses.dataclass(frozen=True)
class StylizeConfig:
    """Every setting of :func:`stylize`, frozen and validated when built (an :class:`NSTError` names the
    first bad one).  :func:`stylize` takes one whole (``config=``) and its keywords replace fields by name.

    Fields:
      size: longest side of the result in pixels (``None``: the content's own size).
      iters: iterations per scale.
      optimizer: ``"lbfgs"``, ``"adam"``, ``"lbfgsb"`` or a :class:`nst_jax.solvers.Solver`.
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
    optimizer: Any = "lbfgs"
    init: Any = "content"
    content_weight: float = LossWeights.content
    style_weight: float = LossWeights.style
    tv_weight: float = LossWeights.tv
    pool: str = "max"
    content_layers: tuple[str, ...] = CONTENT_LAYERS
    style_layers: tuple[str, ...] = STYLE_LAYERS
    style_layer_weights: tuple[float, ...] | None = None
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
        solver_for(self.optimizer, self.learning_rate, self.history, self.history_dtype)  # its settings

    @property
    def loss_weights(self) -> LossWeights:
        return LossWeights(self.content_weight, self.style_weight, self.tv_weight, self.style_layer_weights)


STYLIZE_CONFIG = StylizeConfig()


def stylize(content, style, config: StylizeConfig = STYLIZE_CONFIG, *, weights=None,
            callback: Callable[[Iterate], None] | None = None, **settings):
    """Stylise ``content`` with one or more ``style`` images (Gatys et al.).

    Args:
      content: (H, W, 3) float RGB in [0, 1].
      style: one (h, w, 3) image or a list of them.
      config: a :class:`StylizeConfig` (default: neural-style's settings).
      weights: VGG-19 weights (path or pytree; default: the fetched ImageNet weights).
      callback: receives an :class:`Iterate` (:class:`nst_jax.runinfo.Event`, as every method's callback)
        after every chunk of iterations.
      **settings: :class:`StylizeConfig` fields by name (``iters=300``), replacing ``config``'s.

    Returns:
      ``(image, report)``: (H, W, 3) float32 in [0, 1] and a dict of timings, evaluations and losses.
    """
    t0 = time.perf_counter()
    conf = with_fields(config, settings, "stylize setting")
    size, iters, scales, save_every = conf.size, conf.iters, conf.scales, conf.save_every
    content_layers, style_layers = conf.content_layers, conf.style_layers
    preserve_color = conf.preserve_color
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    if not styles:
        raise NSTError("at least one style image is needed")
    solver = solver_for(conf.optimizer, conf.learning_rate, conf.history, conf.history_dtype)
    solver_settings = dict(solver.settings)
    if solver.name == "lbfgs" and solver_settings["history"] > iters:
        # at most one curvature pair is stored per iteration, so a longer memory is never filled: the same
        # iterates with less memory (2 images per pair; at 2048 px, 100 pairs would be ~7 GB)
        solver = solvers.make_solver("lbfgs", **{**solver_settings, "history": iters})
    # two images a curvature pair, float32 (bfloat16: half); Adam holds none
    history_bytes = dict(solver.settings).get("history", 0) * (
        12 if dict(solver.settings).get("history_dtype") == "bfloat16" else 24)
    rows = row_sharding(conf.devices)
    tile = conf.tile
    if rows is not None and tile not in ("auto", "none"):
        raise NSTError("tile and devices cannot be combined: split across devices, or tile on one")
    blend = blend_weights(conf.style_blend, len(styles))
    cfg = Config(content_layers, style_layers, conf.pool, "l2", bool(conf.remat))

    params = weights if isinstance(weights, dict) and "conv1_1" in weights else vgg19_params(weights)
    params = with_winograd(params)
    content = np.asarray(content, np.float32)
    styles = im.preserve_color(preserve_color, content, styles=[np.asarray(s, np.float32)
                                                                 for s in styles])
    full = im.fit_shape(content.shape, size) if size else content.shape[:2]
    need = max(min_size(content_layers), min_size(style_layers))
    smallest_side = min(full)
    if smallest_side < need:
        raise NSTError(f"the result would be {full[0]}x{full[1]} px, smaller than the {need} px the "
                       f"chosen VGG-19 layers need; use a larger --size")
    longest = max(full)
    sizes = _scale_sizes(longest, scales, longest * need // smallest_side + 1)
    wts = conf.loss_weights.as_arrays(len(style_layers))

    report = {"method": "gatys", "optimizer": solver.name, "solver_settings": dict(solver.settings),
              "devices": 1 if rows is None else rows.mesh.size,
              "iterations_per_scale": iters,
              "scales": [], "evaluations": 0, "compile_seconds": 0.0, "optimize_seconds": 0.0}
    x = None
    for k, side in enumerate(sizes, 1):
        shape = im.fit_shape(content.shape, side) if k < len(sizes) else full
        c = im.resize(content, shape)[None]
        style_side = max(need, int(round(side * conf.style_scale)))
        s = [im.resize_longest(st, style_side)[None] for st in styles]
        if min(min(t.shape[1:3]) for t in s) < need:
            raise NSTError(f"a style image is too small after scaling; it needs at least {need} px "
                           "on its shorter side (raise --style-scale)")
        if rows is not None and shape[0] % rows.mesh.size:
            n = rows.mesh.size
            raise NSTError(f"split across {n} devices, each scale's height must be a multiple of {n}; "
                           f"this one is {shape[0]} px: choose another --size")
        band = band_rows(tile, shape, cfg.content_layers + cfg.style_layers, history_bytes, rows)
        # the targets in bands too when the image is: the style image is as large as the content
        targets = (_targets_banded_jit(params, c, s, blend, dataclasses.replace(cfg, band=band)) if band
                   else _targets_jit(params, c, s, blend, cfg))
        if x is None:
            x0 = _initial_image(conf.init, c, s[0], conf.seed)
        else:
            x0 = im.resize(to_host(x)[0], shape)[None]
        try:
            x, info = optimize(params, x0, targets, wts, dataclasses.replace(cfg, band=band), iters, solver,
                               callback, save_every, (k, len(sizes)), t0, rows)
            info["band_rows"] = band
        except StylizeInterrupted as e:
            out = im.preserve_color(preserve_color, content, stylised=e.image)
            raise StylizeInterrupted(out, _finish(report, e.report, shape, t0)) from None
        _finish(report, info, shape, t0)
    raw = to_host(x)[0]
    report["pixels_outside_range"] = float(np.mean((raw < -1 / 255) | (raw > 1 + 1 / 255)))
    result = im.preserve_color(preserve_color, content, stylised=np.clip(raw, 0, 1))
    report["loss"], report["terms"] = report["scales"][-1]["loss"], report["scales"][-1]["terms"]
    # the report every method returns (nst_jax.runinfo.report), then Gatys's own entries
    core = make_report("gatys", t0, {"targets_and_setup": report["seconds"] - report["compile_seconds"]
                                     - report["optimize_seconds"], "compile": report["compile_seconds"],
                                     "optimize": report["optimize_seconds"]},
                       (report["height"], report["width"]), report["devices"],
                       report["scales"][-1].get("band_rows") or None, preserve_color)
    return result, {**core, **{k: v for k, v in report.items() if k not in core}}


def _finish(report, info, shape, t0):
    report["scales"].append({"height": shape[0], "width": shape[1], **info})
    report["evaluations"] += info.get("evaluations", 0)
    report["compile_seconds"] += info.get("compile_seconds", 0.0)
    report["optimize_seconds"] += info.get("optimize_seconds", 0.0)
    report["height"], report["width"] = shape
    report["seconds"] = time.perf_counter() - t0
    return report


def _initial_image(init, content, style, seed):
    if isinstance(init, np.ndarray):
        if init.ndim != 3 or init.shape[-1] != 3:
            raise NSTError(f"init image must be (H, W, 3), got {init.shape}")
        return im.resize(init.astype(np.float32), content.shape[1:3])[None]
    if init == "content":
        return content
    if init == "noise":
        return jax.random.uniform(jax.random.key(seed), content.shape, jnp.float32)
    if init == "style":
        return im.resize(style[0], content.shape[1:3])[None]
    raise NSTError(f"init must be 'content', 'noise', 'style' or an image path, not {init!r}")
