"""The shared run plumbing: Ctrl-C at a safe point, and where a run ran."""

import dataclasses
import os
import signal

import pytest

from nst_jax import NSTError
from nst_jax.runinfo import DeferredInterrupt, Event, run_metadata


def _ctrl_c():
    os.kill(os.getpid(), signal.SIGINT)


def test_first_ctrl_c_is_a_request_the_second_aborts():
    before = signal.getsignal(signal.SIGINT)
    with DeferredInterrupt() as stop:
        stop.check()  # nothing requested yet
        _ctrl_c()
        assert stop.requested
        with pytest.raises(KeyboardInterrupt):
            stop.check()
        with pytest.raises(KeyboardInterrupt):
            _ctrl_c()
    assert signal.getsignal(signal.SIGINT) is before


def test_training_mode_only_requests_and_disabled_installs_nothing():
    before = signal.getsignal(signal.SIGINT)
    stop = DeferredInterrupt(second_aborts=False).install()
    try:
        _ctrl_c()
        _ctrl_c()
        assert stop.requested
    finally:
        stop.restore()
    assert signal.getsignal(signal.SIGINT) is before
    with DeferredInterrupt(enabled=False) as off:
        assert signal.getsignal(signal.SIGINT) is before and not off.requested


def test_run_metadata():
    import jax

    meta = run_metadata()
    assert meta["platform"] == jax.default_backend() and meta["processes"] == 1
    assert meta["machine"].startswith(f"{len(jax.devices())} x ")
    assert meta["versions"]["jax"] == jax.__version__


def test_three_methods_one_shape(params):
    """Parallel entry points with the same argument names, and the same report beside each picture."""
    import inspect

    import numpy as np

    from nst_jax import adain, feedforward, gatys
    from nst_jax.config import defaults

    # each method: stylize(inputs..., config, *, networks, callback, **settings), a frozen StylizeConfig
    sigs = {m: inspect.signature(m.stylize).parameters for m in (gatys, adain, feedforward)}
    assert all({"config", "callback", "settings"} <= set(s) for s in sigs.values()), sigs
    assert all(s["config"].default is m.STYLIZE_CONFIG for m, s in sigs.items())
    fields = {m: set(defaults(m.StylizeConfig)) for m in sigs}
    assert all({"size", "preserve_color", "tile", "devices"} <= f for f in fields.values()), fields
    assert "style_blend" in fields[gatys] & fields[adain] and "weights" in set(sigs[gatys]) & set(sigs[adain])
    for m in sigs:
        with pytest.raises(dataclasses.FrozenInstanceError):
            m.STYLIZE_CONFIG.size = 1
        with pytest.raises(NSTError, match="unknown stylize setting"):
            m.stylize(np.zeros((8, 8, 3), np.float32), *([] if m is feedforward else [np.zeros((8, 8, 3))]),
                      sizes=3)
    rng = np.random.default_rng(0)
    content, style = rng.random((48, 64, 3)).astype(np.float32), rng.random((40, 40, 3)).astype(np.float32)
    events = []
    reports = [gatys.stylize(content, style, size=None, iters=2, weights=params, callback=events.append,
                             preserve_color="luminance")[1],
               adain.stylize(content, style, size=None, style_size=None, weights=params,
                             callback=events.append, preserve_color="luminance")[1],
               feedforward.stylize(content, "starry_night", size=None, callback=events.append,
                                   preserve_color="luminance")[1]]
    # one callback type: every method's events are Events with a message
    assert all(isinstance(e, Event) and str(e) for e in events)
    assert {e.method for e in events} == {"gatys", "adain", "fast"}
    last = [e for e in events if e.method == "gatys"][-1]
    assert (last.iteration, last.iterations) == (2, 2) and np.isfinite(last.loss)
    for method, r in zip(("gatys", "adain", "fast"), reports, strict=True):
        assert r["method"] == method
        assert (r["height"], r["width"], r["devices"], r["tile_rows"]) == (48, 64, 1, None), r
        assert r["preserve_color"] == "luminance"
        assert isinstance(r["seconds"], float) and r["seconds"] >= sum(r["timings"].values()) - 1e-6, r
