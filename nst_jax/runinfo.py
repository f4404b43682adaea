"""What every command shares around the work itself: a Ctrl-C that stops at a safe point, and the record of
where a run ran (machine, devices, library versions).

:class:`DeferredInterrupt` turns the first SIGINT into a request that the running loop honours between
compiled steps (so it never lands inside JAX's own code, and the loop can save what it has); a second
Ctrl-C, when the loop allows it, interrupts at once.  Gatys's stylize (through its callback) and training
(between steps) both use it.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
from typing import Any


class DeferredInterrupt:
    """Context manager: while active, Ctrl-C sets :attr:`requested` instead of raising.

    ``second_aborts``: a second Ctrl-C raises :class:`KeyboardInterrupt` at once.  ``enabled=False`` (or
    outside the main thread, where Python cannot install signal handlers) installs nothing and never
    requests.  The previous handler is restored on exit.
    """

    def __init__(self, second_aborts: bool = True, enabled: bool = True):
        self.second_aborts = second_aborts
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.requested = False
        self._previous = None

    def _handler(self, signum, frame):
        if self.requested and self.second_aborts:
            raise KeyboardInterrupt
        self.requested = True

    def check(self) -> None:
        """Raise :class:`KeyboardInterrupt` if Ctrl-C was pressed (call it at a safe point)."""
        if self.requested:
            raise KeyboardInterrupt

    def install(self) -> DeferredInterrupt:
        if self.enabled and self._previous is None:
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def __enter__(self):
        return self.install()

    def __exit__(self, *exc):
        self.restore()
        return False


def versions() -> dict:
    """Installed versions of the packages a result depends on."""
    from importlib import metadata

    out = {}
    for dist in ("nst_jax", "jax", "jaxlib", "optax", "flax", "numpy", "pillow"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def machine() -> str:
    """The hardware a run ran on: the device kind and count, and the CPU model."""
    import jax

    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    devices = jax.devices()
    return f"{len(devices)} x {devices[0].device_kind}" + (f", {cpu}, {os.cpu_count()} cores" if cpu else "")


def run_metadata() -> dict:
    """Where a run ran, for reports: device kind, platform, processes, machine and versions."""
    import jax

    return {"device": str(jax.devices()[0].device_kind), "platform": jax.default_backend(),
            "processes": jax.process_count(), "machine": machine(), "versions": versions()}


def report(method: str, t0: float, timings: dict, shape, devices: int, tile_rows, preserve_color,
           **extra) -> dict:
    """The report every method's ``stylize`` returns, beside its picture: ``method``, ``seconds`` (the
    whole call, from ``t0``), ``timings`` (seconds per stage), ``height``/``width`` of the picture,
    ``devices`` it was split across, ``tile_rows`` (band height when tiled, else ``None``),
    ``preserve_color``, and the method's own entries."""
    import time

    return {"method": method, "seconds": time.perf_counter() - t0,
            "timings": {k: float(v) for k, v in timings.items()},
            "height": int(shape[0]), "width": int(shape[1]), "devices": int(devices),
            "tile_rows": tile_rows, "preserve_color": preserve_color, **extra}


@dataclasses.dataclass
class Event:
    """What every method's ``callback`` receives: a one-line ``message`` (``str(event)``), and for an
    iterative method (Gatys) the state after each chunk of iterations: ``iteration`` of ``iterations`` at
    ``scale`` of ``scales``, ``loss`` and its ``terms``, ``seconds`` since the start, ``evaluations`` of the
    objective, and the current ``image`` when a save is due; for a batch of pictures optimised together,
    ``batch`` (their number), ``losses`` (each one's) and ``loss`` their mean."""

    method: str
    message: str = ""
    iteration: int = 0
    iterations: int = 0  # 0: not an iteration event
    scale: int = 1
    scales: int = 1
    loss: float = float("nan")
    terms: dict = dataclasses.field(default_factory=dict)
    seconds: float = 0.0
    image: Any = None
    evaluations: int = 0
    batch: int = 1
    losses: tuple = ()

    def __str__(self) -> str:
        return self.message


def emitter(method: str, callback):
    """``say(message)`` for a method's stages: each message as an :class:`Event` to ``callback``."""
    if callback is None:
        return lambda message: None
    return lambda message: callback(Event(method, message))
