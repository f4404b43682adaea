"""The shared run plumbing: Ctrl-C at a safe point, and where a run ran."""

import os
import signal

import pytest

from nst_jax.runinfo import DeferredInterrupt, run_metadata


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
