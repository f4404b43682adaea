"""Compiled programs kept whole across processes (nst_jax.compile_cache.stored) and values kept with them."""

import os
import subprocess
import sys
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nst_jax import compile_cache


@partial(jax.jit, static_argnames="power")
def _affine(params, x, power=1):
    return (x @ params["w"] + params["b"]) ** power


@pytest.fixture
def store(tmp_path, monkeypatch):
    """The store in a folder of its own, as enable_compilation_cache sets it, and a fresh process's memory."""
    monkeypatch.setitem(compile_cache._store, "dir", tmp_path / "programs")
    monkeypatch.setitem(compile_cache._store, "memo", {})
    return tmp_path / "programs"


def _traced_seconds():
    return compile_cache.compile_stats()[1]


def test_a_stored_program_is_loaded_whole_by_a_later_process(store, monkeypatch):
    rng = np.random.default_rng(0)
    params = {"w": rng.standard_normal((5, 3)).astype(np.float32), "b": np.float32(0.5)}
    x = rng.standard_normal((4, 5)).astype(np.float32)
    affine = x.astype(np.float64) @ params["w"] + 0.5
    want = affine ** 2
    f = compile_cache.stored(_affine, "affine", static_argnames=("power",))

    np.testing.assert_allclose(f(params, x, power=2), want, rtol=1e-5)
    assert len(list(store.glob("affine-*.pkl"))) == 1
    monkeypatch.setitem(compile_cache._store, "memo", {})  # a new process: nothing in memory
    compile_ = compile_cache._compile
    monkeypatch.setattr(compile_cache, "_compile", lambda *a: pytest.fail("compiled instead of loaded"))
    before = _traced_seconds()
    np.testing.assert_allclose(f(params, x, power=2), want, rtol=1e-5)
    assert _traced_seconds() == before  # loaded: neither traced, lowered nor compiled
    monkeypatch.setattr(compile_cache, "_compile", compile_)

    # another static argument or another shape is another program
    np.testing.assert_allclose(f(params, x, power=1), affine, rtol=1e-5)
    np.testing.assert_allclose(f(params, x[:2]), x[:2] @ params["w"] + 0.5, rtol=1e-5)
    assert len(list(store.glob("affine-*.pkl"))) == 3
    monkeypatch.setenv("NST_JAX_CONV", "winograd")  # read when VGG-19 is traced: another program
    f(params, x[:2])
    assert len(list(store.glob("affine-*.pkl"))) == 4


def test_a_damaged_program_is_compiled_again(store, monkeypatch):
    params = {"w": np.eye(3, dtype=np.float32), "b": np.float32(1)}
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    f = compile_cache.stored(_affine, "affine", static_argnames=("power",))
    f(params, x)
    (path,) = store.glob("affine-*.pkl")
    path.write_bytes(path.read_bytes()[:100])  # a process that died while writing it
    monkeypatch.setitem(compile_cache._store, "memo", {})
    np.testing.assert_allclose(f(params, x), x + 1)
    assert path.stat().st_size > 100  # written again, whole


def test_without_the_cache_the_function_is_jitted_itself(monkeypatch):
    monkeypatch.setitem(compile_cache._store, "dir", None)
    f = compile_cache.stored(_affine, "affine", static_argnames=("power",))
    x = jnp.ones((2, 3))
    np.testing.assert_allclose(f({"w": np.eye(3, dtype=np.float32), "b": 0.0}, x), np.ones((2, 3)))


def test_kept_values_are_computed_once(store, monkeypatch):
    calls = []

    def compute():
        calls.append(1)
        return {"conv/kernel": [3, 3, 4, 8]}

    assert compile_cache.kept("shapes-test", compute) == {"conv/kernel": [3, 3, 4, 8]}
    assert compile_cache.kept("shapes-test", compute) == {"conv/kernel": [3, 3, 4, 8]}
    assert len(calls) == 1
    monkeypatch.setitem(compile_cache._store, "dir", None)
    compile_cache.kept("shapes-test", compute)
    assert len(calls) == 2


def _my_gram(f):  # a user's own representation: defined outside the package
    n, h, w, c = f.shape
    x = f.reshape(n, h * w, c)
    return jnp.einsum("npc,npd->ncd", x, x) / (h * w)


def _my_distance(f, t, key=None):
    return jnp.mean((_my_gram(f) - t) ** 2)


def test_fingerprint_tells_settings_apart_and_refuses_a_users_functions():
    import dataclasses

    from nst_jax import gatys, style

    fp = compile_cache.fingerprint
    cfg = gatys.Config()
    assert fp(cfg) == fp(gatys.Config())
    objective = dataclasses.replace(cfg.objective, style_loss=dataclasses.replace(style.GRAM, weight=2.0))
    assert fp(dataclasses.replace(cfg, objective=objective)) != fp(cfg)  # one weight inside the term
    assert fp(gatys.Config(execution=gatys.Execution(conv="winograd"))) != fp(cfg)
    mine = style.StyleLoss(target=_my_gram, distance=_my_distance, name="gram")
    users = dataclasses.replace(cfg.objective, style_loss=mine)
    with pytest.raises(compile_cache._Unkeyable):
        fp(dataclasses.replace(cfg, objective=users))
    with pytest.raises(compile_cache._Unkeyable):
        fp(lambda x: x)


def test_gatys_runs_the_same_from_stored_programs(store, monkeypatch, params):
    """Gatys's programs (targets, the solver's start, its iterations) stored, then loaded by a 'new process':
    the same picture, bit for bit, as without the store; with a user's own term nothing is stored."""
    import nst_jax
    from nst_jax import style

    rng = np.random.default_rng(1)
    content, painting = rng.uniform(size=(40, 48, 3)).astype(np.float32), rng.uniform(size=(48, 48, 3))
    run = partial(nst_jax.stylize, content, painting.astype(np.float32), size=48, iters=4, weights=params)
    first, _ = run()
    names = sorted(p.name.split("-")[0] for p in store.glob("*.pkl"))
    assert names == ["gatys_chunk", "gatys_content_targets", "gatys_init", "gatys_style_targets"]
    monkeypatch.setitem(compile_cache._store, "memo", {})
    monkeypatch.setattr(compile_cache, "_compile", lambda *a: pytest.fail("compiled instead of loaded"))
    loaded, _ = run()
    monkeypatch.setitem(compile_cache._store, "dir", None)
    plain, _ = run()
    np.testing.assert_array_equal(loaded, first)
    np.testing.assert_array_equal(plain, first)

    monkeypatch.setitem(compile_cache._store, "dir", store.parent / "users")
    run(style_loss=style.StyleLoss(target=_my_gram, distance=_my_distance, name="mine"))
    assert not list((store.parent / "users").glob("gatys_*.pkl"))


def test_calls_it_cannot_key_go_to_the_jitted_function(store):
    """Inside a transformation, with a keyword it was not told is static, or with a bound method in a static
    argument, the call is jax.jit's own, and nothing is stored."""
    f = compile_cache.stored(_affine, "affine", static_argnames=("power",))
    params = {"w": np.eye(2, dtype=np.float32), "b": np.float32(0)}
    x = np.ones((1, 2), np.float32)
    g = jax.grad(lambda x: jnp.sum(f(params, x, power=2)))(x)  # traced arguments
    np.testing.assert_allclose(g, 2 * x)
    assert not list(store.glob("*.pkl"))
    with pytest.raises(compile_cache._Unkeyable):
        compile_cache.fingerprint({1: 2}.get)
    with pytest.raises(compile_cache._Unkeyable):
        compile_cache.fingerprint(type("Mine", (tuple,), {})((1,)))


def test_the_networks_run_from_the_store_without_flax(tmp_path):
    """flax traces and initialises the learned networks (nst_jax.modules); a process whose programs and
    parameter shapes all come from the store never imports it."""
    script = ("import sys, numpy as np, nst_jax\n"
              "from nst_jax import adain, feedforward\n"
              "nst_jax.enable_compilation_cache()\n"
              "x = np.random.default_rng(0).random((40, 48, 3), np.float32)\n"
              "adain.stylize(x, x[::-1], size=48, style_size=48)\n"
              "feedforward.stylize(x, size=48)\n"
              "print('flax' in sys.modules)\n")
    env = {**os.environ, "NST_JAX_XLA_CACHE": str(tmp_path)}
    runs = [subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
            for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[-1].stderr[-2000:]
    assert [r.stdout.split()[-1] for r in runs] == ["True", "False"]
