"""The persistent XLA compilation cache: a second run with the same sizes loads, not compiles; and the
networks' compiled programs kept whole (:func:`stored`), so that a second run does not even trace them."""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import json
import os
import pickle
import platform
import threading
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np

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
    _store["dir"] = path / "programs"
    return path


# --- compiled programs kept whole ---------------------------------------------------------------------------
# JAX's persistent cache is keyed on the lowered program, so every process still traces and lowers a function
# before it can look the compilation up (0.3 s of `nst-jax fast`'s 1.7 s at 512 px on a 2-core Xeon).  A
# stored program is keyed instead on everything that decides it: the function's name, its static arguments,
# its arguments' structure, shapes and types, this package's source, the versions of JAX and the libraries
# it traces through, JAX's options, XLA's flags, the convolution choice, the devices and the CPU (XLA:CPU
# compiles for the host's instruction set).  A
# program is stored only where all of that is known (one device; static arguments with a stable repr).

_store: dict = {"dir": None, "memo": {}, "salt": None}


def _cpu() -> str:
    """The CPU's model and instruction-set flags (Linux), else what Python knows of it."""
    try:
        with open("/proc/cpuinfo") as f:
            lines = [ln for ln in f if ln.startswith(("model name", "flags"))]
        return "".join(dict.fromkeys(lines))
    except OSError:
        return platform.processor() or platform.machine()


def _salt() -> bytes:
    if _store["salt"] is None:
        from importlib import metadata

        import jax

        h = hashlib.sha256()
        package = Path(__file__).resolve().parent
        for src in sorted(package.rglob("*.py")):
            h.update(str(src.relative_to(package)).encode() + b"\0" + src.read_bytes())
        devices = jax.devices()
        libraries = []
        for name in ("jax", "jaxlib", "flax", "optax", "jaxopt", "opt_einsum", "numpy", "ml_dtypes"):
            try:
                libraries.append(metadata.version(name))
            except metadata.PackageNotFoundError:
                libraries.append(None)
        h.update(repr((libraries, os.environ.get("XLA_FLAGS", ""), devices[0].platform,
                       devices[0].device_kind, len(devices), _cpu())).encode())
        _store["salt"] = h.digest()
    return _store["salt"]


def _settings() -> str:
    """What a trace reads besides its arguments and may change within a process: the convolution choice and
    JAX's numerical options."""
    import jax

    options = ("jax_enable_x64", "jax_default_matmul_precision", "jax_default_device",
               "jax_default_prng_impl", "jax_threefry_partitionable", "jax_random_seed_offset")
    return repr((os.environ.get("NST_JAX_CONV", ""), *(str(getattr(jax.config, o, None)) for o in options)))


class _Unkeyable(Exception):
    """A value whose effect on a program no key can vouch for (a function from outside this package)."""


_TRUSTED = ("nst_jax", "jax", "jaxlib", "numpy", "optax", "flax", "math", "builtins", "functools", "operator")


def _trusted(module) -> bool:
    return isinstance(module, str) and module.split(".")[0] in _TRUSTED


def fingerprint(value, depth: int = 0) -> str:
    """A text that changes whenever ``value`` (a static argument: settings, dataclasses, the style and content
    terms' functions) could change a traced program, given this package's source and JAX's version (both in
    the salt).  A function is named by its module, qualified name and code, with its defaults and what its
    closure holds; one from outside this package and its libraries, or an object of unknown structure, raises
    :class:`_Unkeyable`: its program is not stored."""
    if depth > 12:
        raise _Unkeyable("too deep")
    d = depth + 1
    cls = type(value)
    if cls.__module__ != "builtins" and not _trusted(cls.__module__):  # a subclass of a user's own
        raise _Unkeyable(value)
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        return f"{cls.__qualname__}:{value!r}"
    if isinstance(value, type):
        if not _trusted(value.__module__):
            raise _Unkeyable(value)
        return f"type:{value.__module__}.{value.__qualname__}"
    if isinstance(value, np.dtype):
        return f"dtype:{value}"
    if isinstance(value, np.ndarray):
        return f"array:{value.dtype}{value.shape}:{hashlib.sha256(np.ascontiguousarray(value)).hexdigest()}"
    if isinstance(value, np.generic):
        return f"{type(value).__name__}:{value!r}"
    if isinstance(value, enum.Enum):
        return repr(value)
    if isinstance(value, functools.partial):
        return (f"partial({fingerprint(value.func, d)},{fingerprint(value.args, d)},"
                f"{fingerprint(value.keywords, d)})")
    if isinstance(value, types.FunctionType):
        if not _trusted(value.__module__):
            raise _Unkeyable(value)
        code = value.__code__
        try:
            cells = tuple(c.cell_contents for c in value.__closure__ or ())
        except ValueError:  # a cell not yet filled
            raise _Unkeyable(value) from None
        return (f"fn:{value.__module__}.{value.__qualname__}:{code.co_firstlineno}:"
                f"{hashlib.sha256(code.co_code).hexdigest()[:16]}:{fingerprint(code.co_consts, d)}:"
                f"{fingerprint(value.__defaults__, d)}:{fingerprint(value.__kwdefaults__, d)}:"
                f"{fingerprint(cells, d)}")
    if isinstance(value, types.CodeType):
        return f"code:{value.co_name}:{hashlib.sha256(value.co_code).hexdigest()[:16]}"
    if isinstance(value, (types.BuiltinFunctionType, np.ufunc)):
        module = getattr(value, "__module__", None) or ("numpy" if isinstance(value, np.ufunc) else None)
        bound = getattr(value, "__self__", None)
        if not _trusted(module) or not (bound is None or isinstance(bound, types.ModuleType)):
            raise _Unkeyable(value)  # a method bound to an object whose state no name tells
        return f"builtin:{module}.{value.__name__}"
    if dataclasses.is_dataclass(value):
        fields = ",".join(f"{f.name}={fingerprint(getattr(value, f.name), d)}"
                          for f in dataclasses.fields(value))
        return f"{cls.__module__}.{cls.__qualname__}({fields})"
    if isinstance(value, (tuple, list, frozenset, set)):
        items = sorted(fingerprint(v, d) for v in value) if isinstance(value, (set, frozenset)) else \
            [fingerprint(v, d) for v in value]
        return f"{type(value).__qualname__}[{','.join(items)}]"
    if isinstance(value, dict):
        items = sorted(f"{fingerprint(k, d)}:{fingerprint(v, d)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    raise _Unkeyable(value)


def _signature(args, static: dict) -> str | None:
    """What a call's program depends on beyond the salt, or ``None`` where it cannot be told for sure."""
    import jax

    leaves, tree = jax.tree_util.tree_flatten(args)
    try:
        parts = [str(tree), fingerprint(static), _settings()]
    except _Unkeyable:
        return None
    for x in leaves:
        if isinstance(x, jax.core.Tracer):  # inside a transformation: the caller's trace is the program
            return None
        if isinstance(x, jax.Array):
            if len(x.sharding.device_set) != 1:
                return None
            (device,) = x.sharding.device_set
            parts.append(f"{x.shape}{x.dtype}{'w' if x.weak_type else ''}@{device.id}")
        elif isinstance(x, (np.ndarray, np.generic)):
            parts.append(f"{x.shape}{x.dtype}")
        elif isinstance(x, (bool, int, float)):
            parts.append(type(x).__name__)
        else:
            return None
    return "|".join(parts)


def _load(path: Path):
    from jax.experimental import serialize_executable

    try:
        with open(path, "rb") as f:
            return serialize_executable.deserialize_and_load(*pickle.load(f))
    except Exception:  # absent, partly written by a process that died, or from another jaxlib: compile
        return None


def _save(path: Path, program) -> None:
    from jax.experimental import serialize_executable

    try:
        data = pickle.dumps(serialize_executable.serialize(program))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # whole or not at all, also with two processes at once
    except Exception:  # not serialisable, or a read-only or full disk: the next run compiles, nothing else
        pass


def kept(name: str, compute: Callable[[], dict]) -> dict:
    """``compute()``, a JSON-able dict that depends on this package's source alone (such as a network's
    parameter shapes, which take a trace of its ``init`` to know), kept on disk once
    :func:`enable_compilation_cache` has run."""
    folder = _store["dir"]
    if folder is None:
        return compute()
    path = folder / f"{name}-{hashlib.sha256(_salt() + name.encode()).hexdigest()[:40]}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        value = compute()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(value))
            os.replace(tmp, path)
        except OSError:
            pass
        return value


def _compile(jitted, args, static):
    """A fresh compilation (an executable that JAX's persistent cache handed back serialises without its
    machine code on XLA:CPU, so the store compiles its own once per signature)."""
    import jax

    with _COMPILING:
        cache = jax.config.jax_enable_compilation_cache
        jax.config.update("jax_enable_compilation_cache", False)
        try:
            return jitted.lower(*args, **static).compile()
        finally:
            jax.config.update("jax_enable_compilation_cache", cache)


_COMPILING = threading.Lock()


def stored(jitted, name: str, static_argnums: tuple[int, ...] = (), static_argnames: tuple[str, ...] = ()):
    """``jitted`` (a ``jax.jit`` function, with the ``static_argnums`` and ``static_argnames`` it was jitted
    with) as a callable whose compiled program, per signature, is kept in this process and, once
    :func:`enable_compilation_cache` has run, on disk beside the XLA cache: a later process loads it without
    tracing or lowering.  Calls it cannot key (inside a transformation, arguments on several devices, another
    keyword, a static argument holding a function from outside this package, :func:`fingerprint`) go to
    ``jitted`` itself; a stored program that does not load or run is removed and compiled again."""
    import jax

    def call(*args, **static):
        folder = _store["dir"]
        if folder is None or not set(static) <= set(static_argnames):
            return jitted(*args, **static)
        positional = {i: args[i] for i in static_argnums if i < len(args)}
        dynamic = [a for i, a in enumerate(args) if i not in positional]
        sig = _signature(dynamic, {**static, **{f"#{i}": v for i, v in positional.items()}})
        if sig is None:
            return jitted(*args, **static)
        key = hashlib.sha256(_salt() + name.encode() + sig.encode()).hexdigest()[:40]
        program = _store["memo"].get(key)
        if program is not None:
            return program(*dynamic)
        path = folder / f"{name}-{key}.pkl"
        program = _load(path)
        if program is not None:
            try:  # its first run in this process, to the end: a program that fails is not trusted again
                out = jax.block_until_ready(program(*dynamic))
                _store["memo"][key] = program
                return out
            except Exception:
                if any(getattr(x, "is_deleted", lambda: False)() for x in jax.tree_util.tree_leaves(dynamic)):
                    raise  # it had taken its donated arguments: the error is the run's, not the file's
                path.unlink(missing_ok=True)
        program = _compile(jitted, args, static)
        _save(path, program)
        _store["memo"][key] = program
        return program(*dynamic)

    call.__wrapped__ = jitted
    call.__doc__ = jitted.__doc__
    return call


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
