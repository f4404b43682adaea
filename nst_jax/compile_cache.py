"""The persistent XLA compilation cache: a second run with the same sizes loads, not compiles."""

from __future__ import annotations

import os
from pathlib import Path

from .weights import cache_dir


def enable_compilation_cache(path: str | os.PathLike | None = None) -> Path:
    """Turn on JAX's persistent compilation cache (default ``$NST_JAX_XLA_CACHE``, else
    ``$NST_JAX_HOME/xla``).

    The CLI calls this unless ``--no-compile-cache`` is given; API users opt in.
    """
    import jax

    path = Path(path or os.environ.get("NST_JAX_XLA_CACHE") or cache_dir() / "xla")
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path


# What JAX spends making a program: tracing, lowering to MLIR and XLA's compilation (jax.monitoring events).
_COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration",
                   "/jax/core/compile/jaxpr_to_mlir_module_duration",
                   "/jax/core/compile/backend_compile_duration")
_stats = {"compiles": 0, "seconds": 0.0, "listening": False}


def _listen(event: str, duration: float, **_) -> None:
    if event in _COMPILE_EVENTS:
        _stats["seconds"] += duration
        _stats["compiles"] += event == _COMPILE_EVENTS[-1]


def compile_stats() -> tuple[int, float]:
    """``(compilations, seconds)`` in this process since the first call: XLA compilations (a read from the
    persistent cache counts too) and the seconds spent tracing, lowering and compiling.  A public hook to
    see recompiles: take it before and after a call."""
    if not _stats["listening"]:
        import jax

        jax.monitoring.register_event_duration_secs_listener(_listen)
        _stats["listening"] = True
    return _stats["compiles"], _stats["seconds"]
