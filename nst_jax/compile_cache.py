"""The persistent XLA compilation cache: a second run with the same sizes loads, not compiles."""

from __future__ import annotations

import os
from pathlib import Path

from .weights import cache_dir


def enable_compilation_cache(path: str | os.PathLike | None = None) -> Path:
    """Turn on JAX's persistent compilation cache (default ``$NST_JAX_HOME/xla``).

    The CLI calls this unless ``--no-compile-cache`` is given; API users opt in.
    """
    import jax

    path = Path(path) if path else cache_dir() / "xla"
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path
