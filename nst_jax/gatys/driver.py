"""The Gatys driver: any solver of :mod:`nst_jax.solvers` (an optax-style ``(init, step)`` pair) run as
compiled chunks of iterations (``lax.fori_loop``) on a batch of independent pictures (``jax.vmap`` over their
problems, each its own state, step and loss), with progress, Ctrl-C and the loss of the returned picture
between chunks.

Safeguard: L-BFGS without a line search can overshoot, and PyTorch's runs recover from it (2.8x the
loss at 512 px; 1e21 from 1.4e10 with a 100x style weight).  So, as in PyTorch, every finite trial
point is taken; one whose loss is not finite (or above :data:`REJECT_FACTOR` x the current one, if
set) is refused, and the next iteration retries the same direction with a shorter step, keeping the
curvature history -- no extra evaluations.  Refusing finite rises made results worse (BENCHMARKS.md).
"""

from __future__ import annotations

import math
import time

import jax
import jax.numpy as jnp
import numpy as np

from .. import solvers
from ..compile_cache import compile_stats, stored
from ..run import Interrupted
from ..runinfo import Event
from ..tiling import replicate, shard_rows, to_host
from .banded import gatys_value_and_grad_banded
from .objective import Config, gatys_loss

CHUNK = 10  # iterations per compiled call between progress reports
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
    def one(*a):  # on the host: an eager jnp.stack compiles a program for every new shape
        host = [np.asarray(to_host(v)) for v in a]
        dtype = np.int32 if np.issubdtype(host[0].dtype, np.integer) else np.float32
        return jax.device_put(np.stack([v.astype(dtype) for v in host]))

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
    first = jax.tree_util.tree_map(lambda a: a[0], (targets, weights, x))
    # the objective's terms (their shapes, the same for every picture), traced once
    aux = jax.eval_shape(lambda t, w, xi: gatys_loss(params, xi[None], t, w, cfg)[1], *first)

    def one(t, w, xi):
        y = xi[None]
        return _split_rows(solver.init(y * solver.scale, aux), y.shape, rows)

    shape = jax.eval_shape(one, *first)
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
            key = carry[1].num_fun_eval if cfg.objective.stochastic else None

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


# The compiled programs: JAX's own jit cache, keyed by the shapes and the static settings (a second run with
# the same sizes and settings reuses them; jax.clear_caches() drops them).  x and the solver state are
# donated to the chunk: updated in place rather than copied on every call (the L-BFGS history alone is
# 2 x 100 images a picture).
# On one device, with the package's own terms, they are kept whole between processes (compile_cache.stored):
# a later run loads them without tracing (0.9 s at 256 px on a 2-core Xeon).
_STATIC = ("cfg", "solver", "rows")
_INIT = stored(jax.jit(_init, static_argnames=_STATIC), "gatys_init", static_argnames=_STATIC)
_CHUNK = stored(jax.jit(_chunk, static_argnames=_STATIC, donate_argnums=(3, 4)), "gatys_chunk",
                static_argnames=_STATIC)


def init_states(params, targets, weights, x, cfg: Config, solver: solvers.Solver, rows=None):
    """One solver state per picture of ``x`` (N, H, W, 3), nothing evaluated, by the compiled program
    :func:`optimize` uses (its arrays shaped like the image split by ``rows`` as the image is)."""
    return _INIT(params, targets, weights, x, cfg=cfg, solver=solver, rows=rows)


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
    :class:`nst_jax.run.Interrupted` with the current (unclipped) iterates and ``info``."""
    t0 = time.perf_counter() if t0 is None else t0
    n = int(x0.shape[0])
    x = jax.device_put(np.asarray(x0, np.float32)) if rows is None else shard_rows(np.asarray(x0, np.float32),
                                                                                   rows)
    if rows is not None:
        params, targets, weights = replicate((params, targets, weights), rows)
    static = {"cfg": cfg, "solver": solver, "rows": rows}
    compiles0, compile0 = compile_stats()

    def init(*args):
        return _INIT(*args, **static)

    def chunk(*args):
        return _CHUNK(*args, **static)

    topt = time.perf_counter()
    state = init(params, targets, weights, x)

    info = {"iterations": 0, "evaluations": [0] * n, "compile_seconds": 0.0,
            "loss": [float("nan")] * n, "terms": [{} for _ in range(n)]}
    done, boot = 0, 1  # every solver's first step only evaluates at x0
    try:
        for end in _chunk_bounds(iters, save_every):
            x, state = chunk(params, targets, weights, x, state, np.int32(end - done + boot))
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
        _timings(info, topt, compile0)
        raise Interrupted(list(to_host(x)), [info]) from None
    _timings(info, topt, compile0)
    if done:
        # the loss of what is returned: the objective at the iterate clipped to [0, 1], by a fresh state's
        # first step (which only evaluates) through the programs already compiled; the old state goes first
        del state
        state = init(params, targets, weights, x)
        clipped = jnp.clip(x, 0.0, 1.0) if rows is not None else jax.device_put(np.clip(to_host(x), 0.0, 1.0))
        _, state = chunk(params, targets, weights, clipped, state, np.int32(1))
        terms = {k: np.asarray(to_host(v), np.float64).reshape(n) for k, v in state.aux.items()}
        info["loss"] = [float(v) for v in np.asarray(to_host(state.value), np.float64).reshape(n)]
        info["terms"] = [{k: float(v[i]) for k, v in terms.items()} for i in range(n)]
    info["compiles"] = compile_stats()[0] - compiles0
    return x, info


def _timings(info: dict, topt: float, compile0: float) -> None:
    """``compile_seconds``: what tracing and compiling the programs took in this call (none when JAX's cache
    had them); ``optimize_seconds``: the rest of the loop's time."""
    info["compile_seconds"] = compile_stats()[1] - compile0
    info["optimize_seconds"] = max(0.0, time.perf_counter() - topt - info["compile_seconds"])

