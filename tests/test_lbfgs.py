"""nst_jax.lbfgs against torch.optim.LBFGS (no line search), in float64 on small functions."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nst_jax import lbfgs

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)
A, B, X0 = RNG.normal(size=(12, 8)), RNG.normal(size=12), RNG.normal(size=8)


def logcosh_sin(x, lib):
    """Smooth, non-convex (the sin term), bounded below: has negative-curvature steps."""
    a, b = (jnp.asarray(A), jnp.asarray(B)) if lib is jnp else (torch.tensor(A), torch.tensor(B))
    return lib.sum(lib.log(lib.cosh(a @ x - b))) + 0.05 * lib.sum(x ** 2) + lib.sum(lib.sin(3 * x))


def rosenbrock(x, lib):
    return lib.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def torch_iterates(fn, x0, iters, history):
    """x_0 ... x_iters of torch.optim.LBFGS(lr=1, no line search), tolerances off."""
    x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([x], lr=1, max_iter=iters, max_eval=iters + 1, history_size=history,
                            tolerance_grad=-1, tolerance_change=-1)
    points = []

    def closure():
        opt.zero_grad()
        loss = fn(x, torch)
        loss.backward()
        points.append(x.detach().clone().numpy())
        return loss

    opt.step(closure)
    points.append(x.detach().numpy())
    return np.array(points)


def jax_run(fn, x0, iters, history, reject=math.inf):
    """Iterates x_0 ... x_iters, the loss at each, and the final state."""
    with jax.enable_x64(True):
        vg = jax.value_and_grad(lambda x: (fn(x, jnp), ()), has_aux=True)
        x = jnp.asarray(x0, jnp.float64)
        state = lbfgs.init(x, (), history=history)
        step = jax.jit(lambda x, s: lbfgs.step(vg, x, s, history=history, reject=reject))
        points, values = [], []
        for _ in range(iters + 1):  # the first call only evaluates at x0
            x, state = step(x, state)
            points.append(np.asarray(x))
            values.append(float(state.value))
        return np.array(points), values, state


@pytest.mark.parametrize("fn,x0,iters,history", [
    (logcosh_sin, X0, 12, 4),  # wraps the ring buffer; one pair fails the curvature test
    (rosenbrock, np.array([-1.2, 1.0, -1.2, 1.0]), 30, 5),
])
def test_iterates_equal_torch_lbfgs_without_line_search(fn, x0, iters, history):
    ref = torch_iterates(fn, x0, iters, history)
    points, _, state = jax_run(fn, x0, iters, history)
    # points[k] is the point after k + 1 calls: x_0 after the evaluating first call, then x_1 ...
    ours = np.concatenate([x0[None], points[1:]])
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-8)
    assert int(state.num_fun_eval) == iters + 1 and int(state.num_rejected) == 0
    if fn is logcosh_sin:
        assert int(state.pairs) < iters  # a pair with s.y <= 1e-10 was skipped, as torch skips it


def test_safeguard_never_takes_a_worse_point_and_keeps_the_history():
    points, values, state = jax_run(logcosh_sin, X0, 60, 4, reject=1.0)
    assert (np.diff(values) <= 0).all()
    assert int(state.num_rejected) > 0  # without the safeguard, this run's loss rises
    with jax.enable_x64(True):
        g = np.asarray(jax.grad(lambda x: logcosh_sin(x, jnp))(jnp.asarray(points[-1])))
    assert np.abs(g).max() < 1e-6  # converged to a stationary point


def test_a_refused_step_is_retried_shorter_along_the_same_direction():
    with jax.enable_x64(True):
        vg = jax.value_and_grad(lambda x: (logcosh_sin(x, jnp), ()), has_aux=True)
        x, state = jnp.asarray(X0), lbfgs.init(jnp.asarray(X0), (), history=4)
        for _ in range(40):
            x2, state2 = lbfgs.step(vg, x, state, history=4, reject=1.0)
            if int(state2.num_rejected) > int(state.num_rejected):
                break
            x, state = x2, state2
        else:
            pytest.fail("no step was refused")
        np.testing.assert_array_equal(x2, x)  # not moved
        assert float(state2.value) == float(state.value)
        np.testing.assert_array_equal(state2.direction, state.direction)
        np.testing.assert_array_equal(state2.rho_history, state.rho_history)  # history kept
        assert int(state2.pairs) == int(state.pairs) > 0
        assert 0.1 * float(state.stepsize) <= float(state2.stepsize) <= 0.5 * float(state.stepsize)


def test_non_finite_trial_points_are_refused_even_without_a_factor():
    def f(x, lib):  # minimum at x = 1; log of a negative number is nan
        return lib.sum(x - lib.log(x))

    # From 3 the second step (gamma = s/y = 7) lands at -1.67; it is refused and shortened.
    points, values, state = jax_run(f, np.array([3.0]), 30, 5)
    assert int(state.num_rejected) >= 1
    assert all(math.isfinite(v) for v in values)
    np.testing.assert_allclose(points[-1], [1.0], atol=1e-8)


def test_a_memory_longer_than_the_iterations_changes_nothing():
    """stylize caps the L-BFGS history at the iteration count (one pair per iteration at most): the
    iterates must be bit-identical to those of the full 100-pair memory."""
    x0 = np.linspace(-1.5, 1.5, 40).astype(np.float32)
    fn = jax.jit(jax.value_and_grad(lambda x: (rosenbrock(x, jnp), ()), has_aux=True))
    runs = {}
    for history in (8, 100):
        x, state = x0, lbfgs.init(jnp.asarray(x0), (), history=history)
        for _ in range(8):
            x, state = lbfgs.step(fn, x, state, history=history)
        runs[history] = np.asarray(x)
    np.testing.assert_array_equal(runs[8], runs[100])
    assert not np.array_equal(runs[8], x0)


def test_bfloat16_history_stores_half_and_still_converges():
    """history_dtype=bfloat16: the pairs are stored in bfloat16 (half the bytes), products stay in float32;
    on a convex quadratic (minimum A^-1 b, closed form) it converges as the float32 memory does."""
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(40, 40)))
    a = (q * np.linspace(1, 50, 40)) @ q.T
    b = rng.normal(size=40)
    solution = np.linalg.solve(a, b)
    a32, b32 = jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)
    fn = jax.value_and_grad(lambda x: (0.5 * x @ a32 @ x - b32 @ x, ()), has_aux=True)
    ends = {}
    for dtype in (None, jnp.bfloat16):
        state0 = lbfgs.init(jnp.zeros(40, jnp.float32), (), history=10, history_dtype=dtype)
        run = jax.jit(lambda x, st: jax.lax.fori_loop(
            0, 60, lambda i, c: lbfgs.step(fn, *c, history=10), (x, st)))
        x, state = run(jnp.zeros(40, jnp.float32), state0)
        ends[dtype] = (np.asarray(x), state.s_history.dtype)
    assert ends[jnp.bfloat16][1] == jnp.bfloat16 and ends[None][1] == jnp.float32
    for dtype, (x, _) in ends.items():
        np.testing.assert_allclose(x, solution, atol=1e-3 * np.abs(solution).max(), err_msg=str(dtype))
