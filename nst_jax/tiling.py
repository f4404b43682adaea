"""Row bands with halos: running a convolutional network on an image too big to hold at once, with exactly
the whole image's result.

A convolution's output row depends on a few input rows around it (its receptive field); a band of output
rows therefore needs its input rows plus a *halo* above and below.  Rows of the halo near a cut are
themselves wrong (the network pads there as if the image ended), and the wrongness spreads inwards by at
most the receptive radius, so a halo at least that wide leaves the band's own rows exact.  Statistics
over the whole image (instance normalisation, AdaIN's moments) are not local: they are gathered over every
band first and the bands are then finished against them (see :func:`nst_jax.adain.stylize`).

``--tile auto`` tiles only when the whole image would not fit in the memory available
(:func:`needs_tiling`).  ``--devices N`` splits an image by rows across N devices instead
(:func:`row_sharding`): XLA's SPMD partitioner then exchanges the halo rows and reduces the statistics
across devices itself.  The devices may belong to several processes on several hosts
(:func:`initialize_distributed`, ``--distributed``): every process runs the same program on the same inputs,
holds only its own devices' rows, and the finished picture is gathered to every process (:func:`to_host`).
"""

from __future__ import annotations

import dataclasses
import os

from .errors import NSTError


def bands(height: int, band: int, halo: int, align: int = 1) -> list[tuple[int, int, int, int]]:
    """Cover rows ``[0, height)`` with bands of ``band`` rows: ``(start, stop, lo, hi)`` = the band's own
    rows and the rows to compute it from (the band widened by ``halo`` on each side, clipped to the image).
    ``band`` and ``halo`` must be multiples of ``align`` (so that pooling grids line up)."""
    if band < 1 or halo < 0:
        raise NSTError(f"a band needs at least one row and a non-negative halo, not {band} / {halo}")
    if band % align or halo % align:
        raise NSTError(f"band ({band}) and halo ({halo}) must be multiples of {align}")
    out = []
    for start in range(0, height, band):
        stop = min(height, start + band)
        out.append((start, stop, max(0, start - halo), min(height, stop + halo)))
    return out


def equal_bands(height: int, band: int, halo: int, align: int = 1) -> tuple[int, list[tuple[int, int, int]]]:
    """:func:`bands` computed from slices of one ``length`` (one compiled band program, one loop):
    ``(length, [(start, stop, lo), ...])``, each band's own rows and the first of the ``length`` rows it is
    computed from -- at least the band plus ``halo`` on each side, ``lo`` on the ``align`` grid, the last
    slice ending at the image's last row.  ``length >= height`` means one band: the whole image."""
    length = band + 2 * halo
    length += (height - length) % align  # so that the bottom slice, ending at `height`, starts on the grid
    if length >= height:
        return height, [(0, height, 0)]
    return length, [(start, stop, min(lo, height - length))
                    for start, stop, lo, _ in bands(height, band, halo)]


def row_sharding(devices):
    """``devices`` (``None``/1: one device; N; ``"all"``) as the sharding that splits an image's rows
    across the first N devices (``None`` for one)."""
    import jax
    import numpy as np

    available = jax.devices()
    if devices in (None, 1, "1"):
        return None
    n = len(available) if devices == "all" else devices
    try:
        n = int(n)
    except (TypeError, ValueError):
        raise NSTError(f"devices must be a number or 'all', not {devices!r}") from None
    if n < 1 or n > len(available):
        raise NSTError(f"{n} devices asked for, {len(available)} available ({available[0].platform})")
    if n == 1:
        return None
    mesh = jax.sharding.Mesh(np.asarray(available[:n]), ("rows",))
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(None, "rows"))


def shard_rows(x, rows):
    """``x`` (N, H, W, C) placed split by rows across ``rows``' devices (unchanged for ``None``); H must be
    a multiple of the number of devices."""
    if rows is None:
        return x
    import jax

    n = rows.mesh.size
    if x.shape[1] % n:
        raise NSTError(f"split across {n} devices, the image's height must be a multiple of {n}; it is "
                       f"{x.shape[1]} px: choose another --size")
    return jax.device_put(_host_if_multiprocess(x), rows)


def replicate(tree, rows):
    """``tree`` copied to every device of ``rows`` (unchanged for ``None``)."""
    if rows is None:
        return tree
    import jax

    return jax.device_put(_host_if_multiprocess(tree),
                          jax.sharding.NamedSharding(rows.mesh, jax.sharding.PartitionSpec()))


def _host_if_multiprocess(tree):
    """Across processes an array is placed from a host (NumPy) value that every process holds equally;
    a single-device array of this process cannot be."""
    import jax
    import numpy as np

    if jax.process_count() == 1:
        return tree
    return jax.tree_util.tree_map(np.asarray, tree)


def to_host(x):
    """``x`` whole, as a NumPy array, in every process: an array split across processes' devices is
    gathered (a collective: every process must call it at the same point)."""
    import numpy as np

    if getattr(x, "is_fully_addressable", True):
        return np.asarray(x)
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def initialize_distributed(coordinator: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None) -> None:
    """Join the processes of a multi-host run (``jax.distributed.initialize``) before any other JAX call.

    On a Cloud TPU slice, under SLURM or Open MPI every argument is found from the environment; elsewhere
    give all three (the coordinator is process 0's ``host:port``, reachable from every process).  On CPUs
    the processes exchange data with gloo.  After it, ``jax.devices()`` lists every process's devices and
    ``--devices all`` splits an image across all of them."""
    import jax

    if jax.distributed.is_initialized():
        return
    given = [v is not None for v in (coordinator, num_processes, process_id)]
    if any(given) and not all(given):
        raise NSTError("a distributed run outside TPU/SLURM/MPI needs the coordinator address, the number of "
                       "processes and this process's id together")
    if num_processes is not None and not 0 <= process_id < num_processes:
        raise NSTError(f"process id must be in 0..{num_processes - 1}, not {process_id}")
    try:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(coordinator, num_processes, process_id)
    except (RuntimeError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise NSTError(f"could not start the distributed run: {first}") from None


def is_main_process() -> bool:
    """True in the process that writes files (process 0; the only one outside a distributed run)."""
    import jax

    return jax.process_index() == 0


def available_bytes() -> int:
    """Memory this process can still use: the device's free memory on an accelerator, else the host's
    ``MemAvailable`` (Linux), else a conservative 4 GiB."""
    import jax

    if on_accelerator():
        stats = jax.devices()[0].memory_stats() or {}
        if "bytes_limit" in stats:
            return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 4 << 30


def parse_tile(text) -> str | int:
    """``"auto"``, ``"none"`` or a band height in pixels (a positive integer)."""
    if text in (None, "auto", "none"):
        return text or "auto"
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise NSTError(f"tile must be 'auto', 'none' or a band height in pixels, not {text!r}") from None
    if value < 1:
        raise NSTError(f"a tile band needs at least 1 px, not {value}")
    return value


def needs_tiling(tile, pixels: int, bytes_per_pixel: float, fixed_bytes: float = 0.0) -> bool:
    """Whether to tile: always for a band height, never for ``"none"``; for ``"auto"`` when the whole image's
    estimated peak (``fixed + pixels * bytes_per_pixel``) exceeds half the memory available."""
    if tile == "none":
        return False
    if tile == "auto":
        return fixed_bytes + pixels * bytes_per_pixel > memory_budget()
    return True


def memory_budget() -> float:
    """The bytes a run plans to use: half of :func:`available_bytes` (room for XLA's own buffers)."""
    return 0.5 * available_bytes()


@dataclasses.dataclass(frozen=True)
class Footprint:
    """A method's estimated peak memory for one picture of P pixels: ``fixed + P * (per_pixel + held)``.

    ``per_pixel``: what one pass through the network holds (activations), which evaluating a band of rows
    at a time shrinks to the band; ``held``: bytes per pixel held for the whole run whatever the band (the
    solver's history, the iterate, targets); ``fixed``: independent of the picture (weights, runtime)."""

    per_pixel: float
    held: float = 0.0
    fixed: float = 0.0


@dataclasses.dataclass(frozen=True)
class Plan:
    """How a group of same-shaped pictures runs: ``batch`` pictures at once, each evaluated ``band`` rows
    at a time (0: the whole picture)."""

    batch: int
    band: int


def on_accelerator() -> bool:
    """Whether JAX's default device is a GPU or TPU rather than the CPU."""
    import jax

    return jax.devices()[0].platform != "cpu"


def plan(footprint: Footprint, shape, items: int = 1, *, tile="auto", batch: int | None = None,
         halo: int = 0, align: int = 1, budget: float | None = None, accelerator: bool | None = None) -> Plan:
    """The one memory model of every method: how many of ``items`` pictures of ``shape`` (H, W) to run at
    once and in what band height, within ``budget`` bytes (default :func:`memory_budget`).

    ``tile``: ``"none"`` (whole pictures), a band height in px (rounded up to ``align``), or ``"auto"``: whole
    pictures when one fits, else the tallest band (plus ``halo`` rows on each side) that does, one picture at
    a time.  ``batch``: a fixed batch size; ``None``: on an ``accelerator`` (default: :func:`on_accelerator`)
    as many pictures as fit (at least 1, at most ``items``), on a CPU one at a time: there one picture
    already keeps every core busy, and for all three methods batches of 2-16 took longer a picture than
    the same pictures one after another (BENCHMARKS.md "Many pictures").  A band as tall as the picture is
    no band (0)."""
    height, width = int(shape[0]), int(shape[1])
    pixels = height * width
    room = (memory_budget() if budget is None else budget) - footprint.fixed
    whole = pixels * (footprint.per_pixel + footprint.held)
    if tile == "none" or (tile == "auto" and whole <= room):
        band = 0
    elif tile == "auto":
        rows = int((room - pixels * footprint.held) // max(1.0, width * footprint.per_pixel)) - 2 * halo
        band = max(align, rows // align * align)
    else:
        band = -(-int(tile) // align) * align
    band = 0 if band >= height else band
    if batch is None:
        one = whole if band == 0 else (pixels * footprint.held
                                        + (band + 2 * halo) * width * footprint.per_pixel)
        fits = int(room // one) if one > 0 else items
        if accelerator is None:
            accelerator = on_accelerator()
        batch = 1 if (tile == "auto" and band) or not accelerator else max(1, min(items, fits))
    return Plan(max(1, min(int(batch), max(1, items))), band)


__all__ = ["Footprint", "Plan", "available_bytes", "bands", "memory_budget", "needs_tiling", "on_accelerator",
           "parse_tile", "plan", "replicate", "row_sharding", "shard_rows"]
