"""The one way pictures run, for every method: group by shape, plan memory, choose whole / bands / devices,
clip, preserve colour, report, and return one :class:`Result` per picture.

A method (:class:`Method`) supplies only what is its own:

* ``prepare(index, item)``: validate one picture and bring it into the run's form, a :class:`Job` (an
  :class:`nst_jax.errors.NSTError` names what is wrong with it; the other pictures still run);
* ``run(jobs, placement, callback)``: stylise one batch of same-shaped jobs, whole, a band of rows at a time
  or split across devices as the :class:`Placement` says, returning per job ``(raw image, entries)``: the
  image unclipped (a NumPy or JAX array) and the method's own report entries (``timings`` among them), or the
  :class:`NSTError` that stopped that picture;
* its memory model (:attr:`Method.footprint`, with the band geometry ``halo`` and ``align``), its name, and
  whether its style is fixed (a trained per-style network: colour preservation recolours its output).

:func:`run_pictures` does the rest, the same for all of them, so adding a method means writing its model and
those few functions, nothing in this loop.  Ctrl-C (a :class:`KeyboardInterrupt` inside ``run``) becomes an
:class:`Interrupted` holding the running batch's pictures as they stand (a method that iterates raises
:class:`Interrupted` itself with its current iterates); the pictures of earlier batches were already yielded.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable, Iterable, Iterator, NamedTuple

import numpy as np

from . import image as im
from .errors import NSTError
from .runinfo import Event
from .runinfo import report as make_report
from .tiling import Footprint, plan, row_sharding, to_host


class Result(NamedTuple):
    """What every method yields per picture: its ``index`` in the input, and either the ``image`` ((H, W, 3)
    float32 in [0, 1]) and its ``report`` (:func:`nst_jax.runinfo.report`'s entries, then the method's), or
    the ``error`` (an :class:`NSTError`) that stopped it."""

    index: int
    image: Any = None
    report: dict | None = None
    error: NSTError | None = None


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a run: the running batch's pictures as they stand (``images``, clipped and colour
    preserved, and ``reports``); ``image`` and ``report`` are the first one's.  A method raises it from
    ``run`` with its raw iterates and entries; :func:`run_pictures` finishes them before passing it on."""

    def __init__(self, images, reports):
        super().__init__("interrupted")
        self.images = list(images)
        self.reports = list(reports) if isinstance(reports, (list, tuple)) else [reports]
        self.image = self.images[0] if self.images else None
        self.report = self.reports[0] if self.reports else None


@dataclasses.dataclass
class Job:
    """One picture prepared for a run: its ``index`` in the input, the ``content`` image as the method
    stylises it (the reference of colour preservation), the ``shape`` (H, W) of its result, the ``key`` that
    groups it (equal keys run in one batch; default: the shape) and the method's own ``data``."""

    index: int
    content: np.ndarray
    shape: tuple
    data: Any = None
    key: Any = None

    def __post_init__(self):
        self.shape = tuple(int(s) for s in self.shape[:2])
        if self.key is None:
            self.key = self.shape


@dataclasses.dataclass(frozen=True)
class Placement:
    """How one batch runs: ``band`` rows at a time (0: whole pictures) or split by rows across the devices
    of ``rows`` (a :func:`nst_jax.tiling.row_sharding`, ``None``: one device).  :meth:`band_at` answers the
    same question for another shape of the batch (a coarse-to-fine method's scales)."""

    band: int = 0
    rows: Any = None
    tile: Any = "auto"
    footprint: Footprint = Footprint(0.0)
    halo: int = 0
    align: int = 1

    @property
    def devices(self) -> int:
        return 1 if self.rows is None else int(self.rows.mesh.size)

    def band_at(self, shape, pictures: int) -> int:
        """The band height for ``pictures`` pictures of ``shape`` under the same memory model (0: whole)."""
        if self.rows is not None:
            return 0
        return plan(self.footprint, shape, pictures, tile=self.tile, batch=pictures, halo=self.halo,
                    align=self.align).band


class Method:
    """The run contract (module notes): subclass it, set the attributes, write :meth:`prepare` and
    :meth:`run`."""

    name: str = ""
    started: float | None = None  # when the method began its setup (loading networks): a report's clock
    footprint: Footprint = Footprint(0.0)
    halo: int = 0
    align: int = 1
    fixed_style: bool = False  # colour preservation "histogram" recolours the output, not the styles
    preserve_color: str | None = None
    tile: Any = "auto"
    devices: Any = None

    def prepare(self, index: int, item) -> Job:
        raise NotImplementedError

    def run(self, jobs: list[Job], placement: Placement, callback) -> list:
        raise NotImplementedError


def finish(method: Method, job: Job, raw) -> tuple[np.ndarray, float]:
    """A raw result clipped to [0, 1], colour preserved against the job's content; and the fraction of its
    values that were outside [0, 1] by more than one grey level."""
    raw = np.asarray(to_host(raw), np.float32)
    outside = float(np.mean((raw < -1 / 255) | (raw > 1 + 1 / 255)))
    image = im.preserve_color(method.preserve_color, job.content, stylised=np.clip(raw, 0.0, 1.0),
                              fixed_style=method.fixed_style)
    return np.asarray(image, np.float32), outside


def _report(method: Method, job: Job, entries: dict, t0: float, placement: Placement, batch: int,
            outside: float, batches: int) -> dict:
    entries = dict(entries)
    timings = entries.pop("timings", {})
    tile_rows = entries.pop("tile_rows", placement.band or None)
    core = make_report(method.name, t0, timings, job.shape, placement.devices, tile_rows,
                       method.preserve_color)
    return {**core, **entries, "batch": batch, "batches": batches, "pixels_outside_range": outside}


def run_pictures(method: Method, items: Iterable, *, batch: int | None = None,
                 callback: Callable[[Event], None] | None = None) -> Iterator[Result]:
    """Run every item through ``method`` (module notes), yielding a :class:`Result` per picture as its batch
    finishes: a picture that cannot run yields its error first and the others still run.

    ``batch``: pictures run at once (``None``: as many as fit in the memory available on a GPU or TPU, one at
    a time on a CPU: :func:`nst_jax.tiling.plan`).  A result's ``report["seconds"]`` is its batch's time (the
    first batch's includes the run's setup), ``report["batch"]`` the batch's size and ``report["batches"]``
    the batches run so far.  On Ctrl-C raises
    :class:`Interrupted` for the running batch."""
    t0 = method.started or time.perf_counter()
    if batch is not None and int(batch) < 1:
        raise NSTError(f"batch must be at least 1, not {batch}")
    rows = row_sharding(method.devices)
    if rows is not None and method.tile not in ("auto", "none"):
        raise NSTError("tile and devices cannot be combined: split across devices, or tile on one")
    groups: dict = {}
    for i, item in enumerate(items):
        try:
            job = method.prepare(i, item)
        except NSTError as e:
            yield Result(i, error=e)
            continue
        groups.setdefault(job.key, []).append(job)
    batches = 0
    for jobs in groups.values():
        shape = jobs[0].shape
        tile = "none" if rows is not None else method.tile
        p = plan(method.footprint, shape, len(jobs), tile=tile, batch=batch, halo=method.halo,
                 align=method.align)
        placement = Placement(p.band, rows, tile, method.footprint, method.halo, method.align)
        for k in range(0, len(jobs), p.batch):
            part = jobs[k:k + p.batch]
            batches += 1
            yield from _run_batch(method, part, placement, callback, t0, batches)
            t0 = time.perf_counter()


def _run_batch(method: Method, part: list[Job], placement: Placement, callback, t0,
               batches: int) -> Iterator[Result]:
    try:
        outs = method.run(part, placement, callback)
    except Interrupted as e:
        done = [finish(method, j, raw) for j, raw in zip(part, e.images, strict=True)]
        reports = [_report(method, j, r, t0, placement, len(part), out, batches)
                   for j, r, (_, out) in zip(part, e.reports, done, strict=True)]
        raise Interrupted([img for img, _ in done], reports) from None
    for job, out in zip(part, outs, strict=True):
        if isinstance(out, NSTError):
            yield Result(job.index, error=out)
            continue
        raw, entries = out
        image, outside = finish(method, job, raw)
        yield Result(job.index, image, _report(method, job, entries, t0, placement, len(part), outside,
                                                batches))


def collect(results: Iterable[Result], single: bool):
    """``(images, report)`` from a run's results in input order (one image when ``single``): the first error
    is raised; the report is the last picture's, with ``images`` (their number) and ``sizes``."""
    results = sorted(results, key=lambda r: r.index)
    for r in results:
        if r.error is not None:
            raise r.error
    images = [r.image for r in results]
    report = dict(results[-1].report, images=len(images), sizes=[list(i.shape[:2]) for i in images])
    return (images[0] if single else images), report


__all__ = ["Interrupted", "Job", "Method", "Placement", "Result", "collect", "finish", "run_pictures"]
