"""nst_jax.solvers: the optax-style (init, step) pairs, against closed forms and float64 NumPy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nst_jax import solvers
from nst_jax.errors import NSTError

RNG = np.random.default_rng(3)
TARGET = RNG.uniform(-0.5, 1.5, size=(4, 5))  # about half of it outside [0, 1]
CURV = RNG.uniform(0.5, 4.0, size=(4, 5))


def quadratic(x):
    """A separable convex quadratic whose box-constrained minimiser is clip(TARGET, 0, 1)."""
    return jnp.sum(jnp.asarray(CURV) * (x - jnp.asarray(TARGET)) ** 2), {"half": 0.5 * x.sum()}


def run(solver, x0, steps):
    """Drive a solver as nst_jax.gatys does: the objective of y / scale on y = x * scale."""
    with jax.enable_x64(True):
        vg = jax.value_and_grad(lambda y: quadratic(y / solver.scale), has_aux=True)
        y = jnp.asarray(x0, jnp.float64) * solver.scale
        state = solver.init(y, jax.eval_shape(lambda: quadratic(y)[1]))
        step = jax.jit(lambda y, s: solver.step(vg, y, s))
        history = []
        for _ in range(steps + 1):  # the first step only evaluates
            y, state = step(y, state)
            history.append((np.asarray(y / solver.scale), float(state.value)))
        return history, state


def test_lbfgsb_reaches_the_box_constrained_minimiser_inside_the_box():
    x0 = np.full((4, 5), 0.5)
    history, state = run(solvers.lbfgsb(history=10), x0, 30)
    x, value = history[-1]
    np.testing.assert_allclose(x, np.clip(TARGET, 0, 1), atol=1e-6)
    assert all(((h >= 0) & (h <= 1)).all() for h, _ in history)  # every iterate, not clipped afterwards
    np.testing.assert_allclose(value, np.sum(CURV * (np.clip(TARGET, 0, 1) - TARGET) ** 2), rtol=1e-9)
    assert int(state.num_fun_eval) >= 31  # the first evaluation plus at least one per iteration
    np.testing.assert_allclose(float(state.aux["half"]), 0.5 * x.sum(), rtol=1e-9)


def test_adam_iterates_equal_float64_numpy_adam_with_projection():
    x0 = RNG.uniform(0, 1, size=(4, 5))
    lr, b1, b2, eps = 0.05, 0.9, 0.999, 1e-8
    history, state = run(solvers.adam(lr), x0, 12)
    x, m, v = x0.copy(), np.zeros_like(x0), np.zeros_like(x0)
    expected = [x0.copy()]
    for t in range(1, 13):
        g = 2 * CURV * (x - TARGET)
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        step = lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
        x = np.clip(x - step, 0.0, 1.0)
        expected.append(x.copy())
    for (got, value), want in zip(history, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(value, np.sum(CURV * (want - TARGET) ** 2), rtol=1e-10)
    assert int(state.num_fun_eval) == 13


def test_lbfgs_solver_is_nst_jax_lbfgs_on_pixel_values_in_0_to_255():
    s = solvers.lbfgs(history=5)
    assert s.scale == 255.0 and s.name == "lbfgs"
    history, state = run(s, np.full((4, 5), 0.5), 40)
    assert history[-1][1] < 0.01 * history[0][1]  # unconstrained: the minimiser is TARGET itself
    assert int(state.num_fun_eval) == 41  # exactly one evaluation per iteration


def test_solvers_compare_by_settings_and_reject_what_they_do_not_take():
    assert solvers.lbfgs(history=7) == solvers.make_solver("lbfgs", history=7)
    assert hash(solvers.adam(0.1)) == hash(solvers.adam(0.1)) and solvers.adam(0.1) != solvers.adam(0.2)
    assert solvers.make_solver("lbfgsb", history=None) == solvers.lbfgsb()  # None: the default
    for name, kw, match in (("adam", {"history": 5}, "does not take history"),
                            ("lbfgs", {"learning_rate": 0.1}, "does not take learning rate"),
                            ("sgd", {}, "optimizer must be one of"),
                            ("lbfgs", {"history": 0}, "history must be at least 1"),
                            ("lbfgsb", {"lower": 1.0, "upper": 0.0}, "must be below"),
                            ("adam", {"learning_rate": -1.0}, "must be positive")):
        with pytest.raises(NSTError, match=match):
            solvers.make_solver(name, **kw)
