"""L-BFGS without line search, as ``torch.optim.LBFGS`` runs it for neural-style: a pure, jit-able
iteration that costs exactly one function evaluation.

The algorithm (Nocedal & Wright, Algorithm 7.4, with PyTorch's choices):

* the first step is ``-g * min(1, 1/|g|_1)``; every later one is ``-H g`` with unit step length;
* ``H`` is the two-loop recursion over the last ``history`` curvature pairs ``(s, y)``, with the
  initial scale ``gamma = s.y / y.y`` of the newest pair;
* a pair with ``s.y <= 1e-10`` is not stored and ``gamma`` is kept (PyTorch's curvature test; a pair
  with negative ``s.y`` would make ``H`` indefinite and turn steps uphill).

With ``reject=inf`` the iterates are those of ``torch.optim.LBFGS(lr=1, line_search_fn=None)`` (the
tests compare them).  A finite ``reject`` adds a safeguard that costs no extra evaluations: a trial
point whose loss exceeds the current one by more than ``(reject - 1) * |f|`` (or is not finite) is not
taken; the next iteration retries the same direction with a shorter step (the minimiser of the
quadratic through ``f``, ``g.d`` and the trial loss, kept within ``[0.1, 0.5]`` of the step that
failed) and the curvature history is kept.  A non-finite trial is always rejected.

Why not :class:`jaxopt.LBFGS`: with a fixed step it stores pairs with ``s.y <= 0`` (their negative
``rho`` made our Gatys runs diverge), its first step and ``gamma`` differ from PyTorch's, and its step
length cannot change per iteration, so a rejected step could only restart with an empty history.  At
512 px, 20 iterations, that left the loss at 8.9e6 where PyTorch reached 5.1e6 (BENCHMARKS.md).

Usage (``value_and_grad(x) -> ((f, aux), g)``)::

    state = init(x, aux_like, history=100)
    for _ in range(n + 1):          # the first call only evaluates at x
        x, state = step(value_and_grad, x, state, history=100)
    state.value, state.aux, state.num_fun_eval
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

CURVATURE_EPS = 1e-10  # torch.optim.LBFGS's threshold on s.y


class LBFGSState(NamedTuple):
    value: jax.Array  # f at the current point (+inf before the first evaluation)
    aux: Any  # the objective's auxiliary output at the current point
    grad: jax.Array  # gradient at the current point
    direction: jax.Array  # the direction the next trial point lies along
    stepsize: jax.Array  # ... and how far
    s_history: jax.Array  # (history, *x.shape) ring buffer of steps
    y_history: jax.Array  # (history, *x.shape) ring buffer of gradient changes
    rho_history: jax.Array  # (history,) 1 / s.y; 0 in unused slots
    gamma: jax.Array  # initial inverse-Hessian scale
    pairs: jax.Array  # curvature pairs stored so far (the newest is in slot (pairs - 1) % history)
    num_fun_eval: jax.Array
    num_rejected: jax.Array  # trial points the safeguard did not take


def init(x, aux_like=None, *, history: int = 100, history_dtype=None) -> LBFGSState:
    """A state at ``x`` with nothing evaluated yet; the first :func:`step` evaluates at ``x``.

    ``aux_like``: a pytree of arrays (or ShapeDtypeStructs) shaped like the objective's aux output.
    ``history_dtype``: the curvature pairs' storage type (default ``x``'s; ``bfloat16`` halves the largest
    part of the memory at big sizes).  Products with them are computed in ``x``'s type.
    """
    if history < 1:
        raise ValueError(f"history must be at least 1, not {history}")
    dt = x.dtype
    hdt = dt if history_dtype is None else jnp.dtype(history_dtype)
    zeros = jnp.zeros_like(x)
    aux = jax.tree_util.tree_map(lambda a: jnp.zeros(a.shape, a.dtype), aux_like)
    return LBFGSState(value=jnp.asarray(jnp.inf, dt), aux=aux, grad=zeros, direction=zeros,
                      stepsize=jnp.zeros((), dt),
                      s_history=jnp.zeros((history,) + x.shape, hdt),
                      y_history=jnp.zeros((history,) + x.shape, hdt),
                      rho_history=jnp.zeros((history,), dt), gamma=jnp.ones((), dt),
                      pairs=jnp.zeros((), jnp.int32), num_fun_eval=jnp.zeros((), jnp.int32),
                      num_rejected=jnp.zeros((), jnp.int32))


def _vdot(a, b):
    return jnp.vdot(a, b)


def inverse_hessian_product(v, state: LBFGSState, history: int):
    """``H v`` by the two-loop recursion over the stored pairs (newest first, then oldest first)."""
    n = jnp.minimum(state.pairs, history)

    def newest_first(i, carry):
        q, alpha = carry
        k = (state.pairs - 1 - i) % history
        a = state.rho_history[k] * _vdot(state.s_history[k].astype(q.dtype), q)
        return q - a * state.y_history[k].astype(q.dtype), alpha.at[k].set(a)

    q, alpha = jax.lax.fori_loop(0, n, newest_first,
                                 (v, jnp.zeros((history,), state.rho_history.dtype)))

    def oldest_first(i, r):
        k = (state.pairs - n + i) % history
        b = state.rho_history[k] * _vdot(state.y_history[k].astype(r.dtype), r)
        return r + (alpha[k] - b) * state.s_history[k].astype(r.dtype)

    return jax.lax.fori_loop(0, n, oldest_first, state.gamma * q)


def step(value_and_grad: Callable, x, state: LBFGSState, *, history: int = 100,
         reject: float = math.inf):
    """One iteration: evaluate the trial point ``x + stepsize * direction`` once, take it (or not,
    see the module notes), update the history and prepare the next trial.  Returns ``(x, state)``."""
    trial = x + state.stepsize * state.direction
    (f, aux), g = value_and_grad(trial)
    first = state.num_fun_eval == 0
    finite = jnp.isfinite(f)
    if math.isfinite(reject):
        ok = finite & (first | (f <= state.value + (reject - 1.0) * jnp.abs(state.value)))
    else:
        ok = finite

    # curvature pair of the accepted step (none on the first evaluation: s = 0)
    s = state.stepsize * state.direction
    y = g - state.grad
    sy = _vdot(s, y)
    store = ok & (sy > CURVATURE_EPS)
    slot = state.pairs % history
    hist = state._replace(
        s_history=state.s_history.at[slot].set(
            jnp.where(store, s.astype(state.s_history.dtype), state.s_history[slot])),
        y_history=state.y_history.at[slot].set(
            jnp.where(store, y.astype(state.y_history.dtype), state.y_history[slot])),
        rho_history=state.rho_history.at[slot].set(
            jnp.where(store, 1.0 / jnp.where(store, sy, 1.0), state.rho_history[slot])),
        gamma=jnp.where(store, sy / jnp.where(store, _vdot(y, y), 1.0), state.gamma),
        pairs=state.pairs + store.astype(jnp.int32))

    grad = jnp.where(ok, g, state.grad)
    direction = jax.lax.cond(ok, lambda: inverse_hessian_product(-grad, hist, history),
                             lambda: state.direction)
    # accepted: unit step (PyTorch's first: min(1, 1/|g|_1)); rejected: a shorter step, same direction
    t = state.stepsize
    slope = _vdot(state.grad, state.direction)
    t_quad = -slope * t * t / (2.0 * (f - state.value - slope * t))
    t_back = jnp.clip(jnp.where(jnp.isfinite(t_quad), t_quad, 0.1 * t), 0.1 * t, 0.5 * t)
    t_next = jnp.where(ok, jnp.where(first, jnp.minimum(1.0, 1.0 / jnp.sum(jnp.abs(g))), 1.0), t_back)

    def pick(a, b):
        return jnp.where(ok, a, b)

    state = hist._replace(value=pick(f, state.value),
                          aux=jax.tree_util.tree_map(pick, aux, state.aux),
                          grad=grad, direction=direction, stepsize=t_next.astype(t.dtype),
                          num_fun_eval=state.num_fun_eval + 1,
                          num_rejected=state.num_rejected + (~ok).astype(jnp.int32))
    return pick(trial, x), state
