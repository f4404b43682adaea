"""Solvers for optimising pixels, in optax's shape: a factory validates its settings once and returns a
:class:`Solver`, a pair of pure functions

* ``init(x, aux_like) -> state``: a state at ``x`` with nothing evaluated (so that the objective is
  compiled once, inside the program that runs the iterations);
* ``step(value_and_grad, x, state) -> (x, state)``: the first call evaluates at ``x`` and does not move;
  every later call is one iteration.  ``value_and_grad(x) -> ((f, aux), g)``.

Every state carries ``value`` (``f`` at the returned ``x``), ``aux`` (the objective's auxiliary output
there) and ``num_fun_eval``; a solver may carry more counters (L-BFGS: ``num_rejected``).  ``Solver.scale``
is the unit the solver iterates in: the driver hands it ``x * scale`` and an objective of ``y / scale``.
Solvers compare and hash by ``(name, settings)``, so they can be static arguments of compiled programs.

Solvers:

* :func:`lbfgs` (default): L-BFGS with unit steps and one evaluation per iteration, the algorithm of
  ``torch.optim.LBFGS`` without line search that neural-style(-pt) uses, on pixel values in 0..255
  (:mod:`nst_jax.lbfgs`; its iterates equal PyTorch's);
* :func:`adam`: :func:`optax.adam` on [0, 1] values, projected onto [0, 1] after every step;
* :func:`lbfgsb`: ``jaxopt.LBFGSB`` (Byrd, Lu, Nocedal & Zhu 1995) with box constraints [0, 1] on every
  pixel: the iterates stay in range by construction, nothing is clipped.  Its line search spends a
  varying number of evaluations per iteration (``num_fun_eval`` counts them all).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from . import lbfgs as _lbfgs
from .errors import NSTError

HISTORY = 100
PIXEL_SCALE = 255.0  # our L-BFGS works on pixel values in 0..255, as neural-style(-pt) does
# L-BFGS-B's settings, measured on the Gatys objective (128 px, 50 iterations; BENCHMARKS.md): on pixel
# values in 0..255 its line search needs 2 evaluations per iteration against 4.5 on [0, 1] values, and a
# memory of 100 pairs reached a lower loss than jaxopt's and SciPy's default 10.
LBFGSB_HISTORY = 100
LBFGSB_SCALE = PIXEL_SCALE
LBFGSB_MAXLS = 20


@dataclasses.dataclass(frozen=True)
class Solver:
    """``init`` and ``step`` (see the module docstring); equal when name and settings are."""

    name: str
    settings: tuple
    init: Callable = dataclasses.field(compare=False, repr=False)
    step: Callable = dataclasses.field(compare=False, repr=False)
    scale: float = 1.0
    # state fields that every problem of a batch holds equal (they advance in lockstep): kept unbatched under
    # jax.vmap, so that a lax.cond on them stays a branch instead of both sides evaluated
    lockstep: tuple = ()


def _zeros_like_tree(tree):
    return jax.tree_util.tree_map(lambda a: jnp.zeros(a.shape, a.dtype), tree)


# --- L-BFGS without line search (torch.optim.LBFGS's algorithm) -------------------------------------------

HISTORY_DTYPES = ("float32", "bfloat16")


def lbfgs(history: int = HISTORY, reject: float = math.inf, history_dtype: str = "float32") -> Solver:
    """Our L-BFGS (:mod:`nst_jax.lbfgs`): ``history`` curvature pairs; ``reject``: the safeguard's factor
    (``inf``: take every finite trial point, as PyTorch does); ``history_dtype``: how the pairs are stored
    (``"bfloat16"``: half the memory of the largest part at big sizes, products still in float32)."""
    history = int(history)
    if history < 1:
        raise NSTError(f"history must be at least 1, not {history}")
    if not reject > 1:
        raise NSTError(f"the rejection factor must be above 1, not {reject}")
    if history_dtype not in HISTORY_DTYPES:
        raise NSTError(f"history dtype must be one of {', '.join(HISTORY_DTYPES)}, not {history_dtype!r}")

    def init(x, aux_like):
        return _lbfgs.init(x, aux_like, history=history,
                           history_dtype=None if history_dtype == "float32" else history_dtype)

    def step(value_and_grad, x, state):
        return _lbfgs.step(value_and_grad, x, state, history=history, reject=reject)

    settings = (("history", history), ("reject", float(reject)))
    if history_dtype != "float32":  # reports and compiled-program keys of float32 runs stay as they were
        settings += (("history_dtype", history_dtype),)
    return Solver("lbfgs", settings, init, step, PIXEL_SCALE)


# --- Adam (optax) -------------------------------------------------------------------------------------------

class AdamState(NamedTuple):
    opt_state: Any
    value: jax.Array
    aux: Any
    grad: jax.Array
    num_fun_eval: jax.Array


def adam(learning_rate: float = 0.02, lower: float = 0.0, upper: float = 1.0) -> Solver:
    """:func:`optax.adam` with the iterate projected onto ``[lower, upper]`` after every step."""
    import optax

    if not learning_rate > 0:
        raise NSTError(f"learning rate must be positive, not {learning_rate}")
    opt = optax.adam(float(learning_rate))

    def init(x, aux_like):
        return AdamState(opt.init(x), jnp.asarray(jnp.inf, x.dtype), _zeros_like_tree(aux_like),
                         jnp.zeros_like(x), jnp.zeros((), jnp.int32))

    def step(value_and_grad, x, state):
        first = state.num_fun_eval == 0
        updates, opt_state = opt.update(state.grad, state.opt_state, x)
        moved = jnp.clip(optax.apply_updates(x, updates), lower, upper)
        x = jnp.where(first, x, moved)
        opt_state = jax.tree_util.tree_map(lambda a, b: jnp.where(first, a, b), state.opt_state, opt_state)
        (f, aux), g = value_and_grad(x)
        return x, AdamState(opt_state, f, aux, g, state.num_fun_eval + 1)

    return Solver("adam", (("learning_rate", float(learning_rate)), ("bounds", (lower, upper))), init, step)


# --- L-BFGS-B (jaxopt) --------------------------------------------------------------------------------------

class LBFGSBState(NamedTuple):
    inner: Any  # jaxopt's LbfgsbState
    value: jax.Array
    aux: Any
    num_fun_eval: jax.Array
    started: jax.Array


def lbfgsb(history: int = LBFGSB_HISTORY, lower: float = 0.0, upper: float = 1.0,
           maxls: int = LBFGSB_MAXLS, scale: float = LBFGSB_SCALE) -> Solver:
    """``jaxopt.LBFGSB`` with every value boxed to ``[lower, upper]`` (in the objective's units; the
    solver iterates on ``x * scale`` within ``[lower * scale, upper * scale]``), ``history`` curvature
    pairs and at most ``maxls`` evaluations in each line search (zoom, strong Wolfe)."""
    history, maxls = int(history), int(maxls)
    if history < 1:
        raise NSTError(f"history must be at least 1, not {history}")
    if maxls < 1:
        raise NSTError(f"the line search needs at least 1 evaluation, not {maxls}")
    if not lower < upper:
        raise NSTError(f"the lower bound {lower} must be below the upper bound {upper}")
    if not scale > 0:
        raise NSTError(f"scale must be positive, not {scale}")

    def make(value_and_grad):
        import warnings

        with warnings.catch_warnings():  # jaxopt warns that it is unmaintained; L-BFGS-B is its only use
            warnings.simplefilter("ignore", DeprecationWarning)
            import jaxopt

        return jaxopt.LBFGSB(fun=value_and_grad, value_and_grad=True, has_aux=True, history_size=history,
                             maxls=maxls, maxiter=1 << 30, tol=0.0, implicit_diff=False)

    def bounds(x):
        return (jnp.full_like(x, lower * scale), jnp.full_like(x, upper * scale))

    def init(x, aux_like):
        def dummy(y):  # shapes only: the state is built without evaluating the objective
            return (jnp.zeros((), y.dtype), _zeros_like_tree(aux_like)), y

        inner = _zeros_like_tree(jax.eval_shape(lambda: make(dummy).init_state(x, bounds(x))))
        return LBFGSBState(inner, jnp.asarray(jnp.inf, x.dtype), _zeros_like_tree(aux_like),
                           jnp.zeros((), jnp.int32), jnp.zeros((), bool))

    def step(value_and_grad, x, state):
        solver = make(value_and_grad)
        box = bounds(x)

        def start():
            inside = jnp.clip(x, *box)
            return inside, solver.init_state(inside, box)

        def iterate():
            out = solver.update(x, state.inner, box)
            return out.params, out.state

        x, inner = jax.lax.cond(state.started, iterate, start)
        inner = inner._replace(num_fun_eval=inner.num_fun_eval.astype(jnp.int32))
        return x, LBFGSBState(inner, inner.value, inner.aux, inner.num_fun_eval, jnp.ones((), bool))

    settings = (("history", history), ("bounds", (lower, upper)), ("maxls", maxls))
    return Solver("lbfgsb", settings, init, step, float(scale), lockstep=("started",))


SOLVERS = {"lbfgs": lbfgs, "adam": adam, "lbfgsb": lbfgsb}


def make_solver(name: str, **settings) -> Solver:
    """The solver called ``name`` with ``settings`` (``None`` values: the solver's own default).  A setting
    the solver does not take is an error, not silently dropped."""
    import inspect

    factory = SOLVERS.get(name)
    if factory is None:
        raise NSTError(f"optimizer must be one of {', '.join(SOLVERS)}, not {name!r}")
    given = {k: v for k, v in settings.items() if v is not None}
    unused = sorted(set(given) - set(inspect.signature(factory).parameters))
    if unused:
        raise NSTError(f"optimizer {name!r} does not take {', '.join(k.replace('_', ' ') for k in unused)}")
    return factory(**given)


__all__ = ["AdamState", "HISTORY", "LBFGSBState", "PIXEL_SCALE", "SOLVERS", "Solver", "adam", "lbfgs",
           "lbfgsb", "make_solver"]
