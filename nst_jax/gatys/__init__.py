"""Gatys, Ecker & Bethge (2015): optimise the pixels of an image so that its VGG-19 features match a
content image and the Gram matrices of its features match one or more style images.

The objective is a plain function of the image (:func:`gatys_loss`); any solver of
:mod:`nst_jax.solvers` (an optax-style ``(init, step)`` pair) runs it compiled:

* ``"lbfgs"`` (default): L-BFGS with unit steps and a history of 100 -- one function evaluation per
  iteration -- the algorithm of ``torch.optim.LBFGS`` without line search, which neural-style and
  neural-style-pt use (:mod:`nst_jax.lbfgs`; its iterates equal PyTorch's).  A plain
  ``jaxopt.LBFGS`` with its default line search spends several evaluations per iteration and is
  ~15x slower end to end here; ``jaxopt.LBFGS`` with a fixed step stores negative-curvature pairs
  and cannot shorten one step, and reached a much worse loss at 512 px (BENCHMARKS.md).
* ``"adam"``: :func:`optax.adam` on the pixels.
* ``"lbfgsb"``: ``jaxopt.LBFGSB`` with every pixel boxed to [0, 1] (BENCHMARKS.md compares it).

Every solver runs as ``lax.fori_loop`` chunks of iterations inside one compiled executable: no Python per
iteration.  Between chunks Python reports progress (a callback receiving an
:class:`nst_jax.runinfo.Event`), saves intermediate images, and can be interrupted (Ctrl-C) with the
current iterate kept.  Many pictures run as one batch (:func:`stylize_many`): ``jax.vmap`` over their
problems, each with its own solver state and loss.

Units and pixel range: L-BFGS optimises unconstrained pixel values in 0..255, exactly as
neural-style does (projection between iterations would break its curvature pairs), and the result is
clipped to [0, 1]; the report counts how many values were outside.  The units matter through the
first, gradient-normalised step (on [0, 1] values it is 255x larger relative to the image) and the
absolute curvature threshold s.y > 1e-10 (on [0, 1] values PyTorch's first pair falls under it and
its runs diverge; see experiments/bench_gatys.py).  Adam works on [0, 1] values and projects onto
[0, 1] after every step.

The package by concern: :mod:`.objective` (the objective and its targets), :mod:`.banded` (the same
objective a band of rows at a time), :mod:`.driver` (compiled chunks of any solver's iterations on a batch),
:mod:`.settings` (the user's settings and their one translation into the compiled objective), and here the
entry points: :class:`Gatys`, the method on the run contract of :mod:`nst_jax.run`, and :func:`stylize` /
:func:`stylize_many`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from .. import image as im
from ..config import blend_weights, with_fields
from ..errors import NSTError
from ..regions import guides, region_masks, resize_mask
from ..run import Interrupted, Job, Method, Placement, Result, collect, run_pictures
from ..runinfo import Event
from ..style import style_loss
from ..tiling import row_sharding, to_host
from ..vgg import min_size, vgg19_params, with_winograd
from .banded import band_halo, gatys_value_and_grad_banded
from .driver import CHUNK, HISTORY, PIXEL_SCALE, REJECT_FACTOR, init_states, optimize, solver_for, stack
from .objective import (
    CONTENT_LAYERS,
    DTYPES,
    STYLE_LAYERS,
    Config,
    Execution,
    LossWeights,
    Objective,
    compute_targets,
    content_targets,
    content_targets_compiled,
    gatys_loss,
    image_terms,
    objective,
    style_targets,
    style_targets_compiled,
)
from .settings import (
    PER_PICTURE,
    STYLIZE_CONFIG,
    Picture,
    StylizeConfig,
    band_rows,
    compiled_config,
    footprint,
    history_bytes,
    plan_scales,
    solver,
    style_side,
)

StylizeInterrupted = Interrupted  # Ctrl-C during stylize / stylize_many (the name users know)


@dataclasses.dataclass
class _Problem:
    """A prepared picture's own part: its settings, style images as the run uses them, its scales and its
    regions of spatial control (R, H, W) (``None``: none)."""

    conf: StylizeConfig
    styles: list
    blend: list
    shapes: tuple
    regions: np.ndarray | None = None


def initial_image(init, content, style, seed):
    """The starting image (1, H, W, 3) for ``content`` (1, H, W, 3): ``init`` ``"content"``, ``"noise"``
    (uniform, seeded by ``seed``), ``"style"`` (``style`` resized) or an (h, w, 3) array (resized)."""
    if isinstance(init, np.ndarray):
        return im.resize(init.astype(np.float32), content.shape[1:3])[None]
    if init == "content":
        return content
    if init == "noise":
        return np.asarray(jax.random.uniform(jax.random.key(seed), content.shape, jnp.float32))
    if init == "style":
        return im.resize(style, content.shape[1:3])[None]
    raise NSTError(f"init must be 'content', 'noise', 'style' or an image path, not {init!r}")


class Gatys(Method):
    """Gatys et al. on the run contract (:mod:`nst_jax.run`): one setting shared by its pictures
    (``config`` and ``**settings``, as :func:`stylize` takes them), the VGG-19 ``weights`` loaded once, each
    style set's targets computed once whatever the batches, and the compiled programs reused for every batch
    of the same shapes (JAX's jit cache).  Its public steps -- :meth:`prepare`, :meth:`targets`,
    :meth:`optimize` -- are what a caller composing its own problem uses (:mod:`nst_jax.video`)."""

    name = "gatys"

    def __init__(self, config: StylizeConfig = STYLIZE_CONFIG, *, weights=None, **settings):
        self.started = time.perf_counter()
        self.conf = conf = with_fields(config, settings, "stylize setting")
        self.solver = solver(conf)
        self.cfg = compiled_config(conf)
        params = weights if isinstance(weights, dict) and "conv1_1" in weights else \
            vgg19_params(weights, upto=conf.content_layers + conf.style_layers)
        self.params = with_winograd(params)
        self.footprint = footprint(history_bytes(self.solver))
        self.halo, self.align = band_halo(conf.content_layers + conf.style_layers)
        self.tile, self.devices, self.preserve_color = conf.tile, conf.devices, conf.preserve_color
        self._style_targets: dict = {}  # (ids of the styles, blend, side, cfg) -> (the styles, their targets)

    # --- the run contract ------------------------------------------------------------------------------

    def prepare(self, index: int, picture: Picture) -> Job:
        """Validate one :class:`Picture` and bring its images into the run's form (an :class:`NSTError` names
        what is wrong)."""
        unknown = sorted(set(picture.settings) - set(PER_PICTURE))
        if unknown:
            raise NSTError(f"a picture of a batch cannot have its own {', '.join(unknown)}; "
                           f"only {', '.join(PER_PICTURE)}")
        conf = with_fields(self.conf, dict(picture.settings), "stylize setting")
        content = np.asarray(picture.content, np.float32)
        if content.ndim != 3 or content.shape[-1] != 3:
            raise NSTError(f"a content image must be (H, W, 3), not {content.shape}")
        style = picture.style
        styles = list(style) if isinstance(style, (list, tuple)) else [style]
        if not styles:
            raise NSTError("at least one style image is needed")
        blend = blend_weights(conf.style_blend, len(styles))
        styles = im.preserve_color(conf.preserve_color, content,
                                   styles=[np.asarray(s, np.float32) for s in styles])
        shapes = plan_scales(content.shape, conf)
        need = max(min_size(conf.content_layers), min_size(conf.style_layers))
        for k, shape in enumerate(shapes, 1):
            short = min(min(im.fit_shape(s.shape, style_side(conf, shape))) for s in styles)
            if short < need:
                many = len(shapes) > 1
                at = f"at scale {k} of {len(shapes)} ({shape[0]}x{shape[1]} px) " if many else ""
                fix = "raise --style-scale" + (", use fewer --scales or a larger --size" if many else "")
                raise NSTError(f"{at}a style image would be {short} px on its shorter side, less than the "
                               f"{need} px the chosen layers need: {fix}")
        if isinstance(conf.init, np.ndarray) and (conf.init.ndim != 3 or conf.init.shape[-1] != 3):
            raise NSTError(f"init image must be (H, W, 3), got {conf.init.shape}")
        regions = None
        if conf.masks is not None:
            regions = region_masks(conf.masks, len(styles), content.shape[:2])
            if conf.style_masks is not None and len(conf.style_masks) != len(styles):
                raise NSTError(f"{len(conf.style_masks)} style masks for {len(styles)} style images: give "
                               "one per style image")
        return Job(index, content, shapes[-1], _Problem(conf, styles, blend, shapes, regions), key=shapes)

    def run(self, jobs: list[Job], placement: Placement, callback) -> list:
        """Every scale of one batch of same-shaped pictures: targets, initial images, :meth:`optimize`; then
        each picture's raw result and report entries (or the error of one that diverged)."""
        t0 = time.perf_counter()
        n, shapes = len(jobs), jobs[0].data.shapes
        wts = stack([j.data.conf.loss_weights.as_arrays(len(self.conf.style_layers)) for j in jobs])
        scales: list[list] = [[] for _ in jobs]
        timing = {"compile": 0.0, "optimize": 0.0}
        x = None
        for k, shape in enumerate(shapes, 1):
            band = placement.band_at(shape, n)
            if band and self.cfg.objective.style_loss.sums is None:
                raise NSTError(f"{n} picture(s) of {shape[0]}x{shape[1]} px do not fit in memory whole, and "
                               f"style loss {self.cfg.objective.style_loss.name!r} cannot be computed in "
                               "bands: use a smaller --size or --batch, or a style loss that is a sum over "
                               "positions (gram, moments, mmd-poly)")
            cfg = self.cfg.with_band(band)
            c = np.stack([im.resize(j.content, shape) for j in jobs])
            targets = self.targets(c, jobs, shape, cfg)
            if x is None:
                x0 = np.stack([initial_image(j.data.conf.init, c[i:i + 1], j.data.styles[0],
                                             j.data.conf.seed)[0] for i, j in enumerate(jobs)])
            else:
                x0 = np.stack([im.resize(a, shape) for a in to_host(x)])
            try:
                x, info = self.optimize(x0, targets, wts, cfg, self.conf.iters, callback,
                                        save_every=self.conf.save_every, scale=(k, len(shapes)), t0=t0,
                                        rows=placement.rows)
            except Interrupted as e:
                _add_scale(scales, timing, e.report, shape, band)
                raise Interrupted(e.images, [self._entries(j, s, timing, t0)
                                             for j, s in zip(jobs, scales, strict=True)]) from None
            _add_scale(scales, timing, info, shape, band)
        raw = to_host(x)
        outs: list = []
        for i, job in enumerate(jobs):
            entries = self._entries(job, scales[i], timing, t0)
            if not math.isfinite(entries["loss"]):
                outs.append(NSTError("the optimisation diverged (loss is not finite); lower the style or TV "
                                     "weight, or use --optimizer adam"))
            else:
                outs.append((raw[i], entries))
        return outs

    # --- the steps a caller composes ------------------------------------------------------------------

    def targets(self, contents, jobs: list[Job], shape, cfg: Config | None = None) -> dict:
        """One entry per picture on a leading axis: the content maps of ``contents`` (N, H, W, 3) in one pass,
        and each distinct style set's targets at the style side of ``shape``, computed once per object."""
        cfg = cfg or self.cfg
        side = style_side(self.conf, shape)
        maps = content_targets_compiled(self.params, np.asarray(contents, np.float32), cfg)
        grams = []
        for j in jobs:
            key = (tuple(id(s) for s in j.data.styles), tuple(j.data.blend), side, cfg)
            if key not in self._style_targets:
                s = [np.asarray(im.resize_longest(st, side), np.float32)[None] for st in j.data.styles]
                # the styles are held beside their targets, so their ids stay theirs
                targets = style_targets_compiled(self.params, s, j.data.blend, cfg, self._style_guides(s))
                self._style_targets[key] = (j.data.styles, targets)
            grams.append(self._style_targets[key][1])
        content = {k: jax.device_put(to_host(v)[:, None]) for k, v in maps.items()}  # no program a shape
        out = {"content": content, "style": stack(grams)}
        if self.conf.masks is not None:
            layers, mode = self.conf.style_layers, self.conf.mask_mode
            per_job = [guides(np.stack([resize_mask(r, shape) for r in j.data.regions]), layers, mode)
                       for j in jobs]
            out["regions"] = {k: jax.device_put(np.stack([g[k] for g in per_job])[:, :, None, :, :, None])
                              for k in layers}
        return out

    def _style_guides(self, styles) -> list | None:
        """Each style image's own region (``style_masks``) at the style layers, ``{layer: (1, 1, h, w, 1)}``,
        or ``None`` for a whole style image; ``None`` without masks."""
        if self.conf.masks is None:
            return None
        masks = self.conf.style_masks or [None] * len(styles)
        out = []
        for s, m in zip(styles, masks, strict=True):
            if m is None:
                out.append(None)
                continue
            g = guides(resize_mask(m, s.shape[1:3])[None], self.conf.style_layers, self.conf.mask_mode)
            out.append({k: jax.device_put(np.asarray(v[:, None, :, :, None], np.float32))
                        for k, v in g.items()})
        return out

    def optimize(self, x0, targets, weights, cfg: Config | None = None, iters: int | None = None,
                 callback: Callable[[Event], None] | None = None, **options):
        """:func:`nst_jax.gatys.driver.optimize` with this object's network and solver."""
        return optimize(self.params, x0, targets, weights, cfg or self.cfg, iters or self.conf.iters,
                        self.solver, callback, **options)

    def _entries(self, job: Job, scales: list, timing: dict, t0: float) -> dict:
        """Gatys's own report entries for one picture (the run layer adds what every method reports)."""
        last = scales[-1]
        seconds = time.perf_counter() - t0
        return {"timings": {"targets_and_setup": seconds - timing["compile"] - timing["optimize"],
                            "compile": timing["compile"], "optimize": timing["optimize"]},
                "tile_rows": last["band_rows"] or None, "optimizer": self.solver.name,
                "solver_settings": dict(self.solver.settings),
                "style_loss": self.cfg.objective.style_loss.name,
                "content_loss": self.cfg.objective.content_loss.name, "dtype": self.cfg.execution.dtype,
                "iterations_per_scale": job.data.conf.iters,
                "iterations": last["iterations"], "scales": scales,
                "evaluations": sum(s["evaluations"] for s in scales), "loss": last["loss"],
                "terms": last["terms"], "compile_seconds": timing["compile"],
                "optimize_seconds": timing["optimize"]}


def _add_scale(scales: list, timing: dict, info: dict, shape, band: int) -> None:
    """One scale's per-picture entries (from :func:`optimize`'s ``info``) added to each picture's list."""
    for i, picture in enumerate(scales):
        entry = {"height": shape[0], "width": shape[1], "iterations": info.get("iterations", 0),
                 "evaluations": info["evaluations"][i], "loss": info["loss"][i], "terms": info["terms"][i],
                 "compile_seconds": info.get("compile_seconds", 0.0),
                 "optimize_seconds": info.get("optimize_seconds", 0.0), "band_rows": band}
        if "rejected_steps" in info:
            entry["rejected_steps"] = info["rejected_steps"][i]
        picture.append(entry)
    timing["compile"] += info.get("compile_seconds", 0.0)
    timing["optimize"] += info.get("optimize_seconds", 0.0)


def stylize_many(pictures, config: StylizeConfig = STYLIZE_CONFIG, *, batch: int | None = None, weights=None,
                 callback: Callable[[Event], None] | None = None, **settings):
    """Stylise many pictures, each its own independent problem, a batch of them in one compiled program.

    Args:
      pictures: :class:`Picture` s (content, style(s), and each one's own :data:`PER_PICTURE` settings).
      config, **settings: the :class:`StylizeConfig` every picture shares (as for :func:`stylize`).
      batch: pictures run at once (``jax.vmap`` over their problems: each its own solver state, step and
        loss); ``None``: as many as fit in the memory available on a GPU or TPU, one at a time on a CPU
        (:func:`nst_jax.tiling.plan`).  Pictures whose scales have different shapes run in different
        batches, never padded.  A batch's pictures are not bit-identical to the same pictures run one at a
        time: L-BFGS amplifies the different rounding of a batched program (up to 20/255 in a pixel after
        hundreds of iterations), a different picture of the same quality.
      weights: VGG-19 weights (path or pytree; default: the fetched ImageNet weights).
      callback: receives an :class:`nst_jax.runinfo.Event` after every chunk of iterations of a batch
        (``batch``: its size; ``losses``: each picture's loss).

    Yields:
      a :class:`nst_jax.run.Result` per picture as its batch finishes (a picture that cannot run yields its
      error first; the others still run).  On Ctrl-C raises :class:`StylizeInterrupted` for the running batch.
    """
    method = Gatys(config, weights=weights, **settings)
    yield from run_pictures(method, pictures, batch=batch, callback=callback)


def stylize(content, style, config: StylizeConfig = STYLIZE_CONFIG, *, weights=None,
            callback: Callable[[Event], None] | None = None, **settings):
    """Stylise ``content`` with one or more ``style`` images (Gatys et al.): :func:`stylize_many` with one
    picture.

    Args:
      content: (H, W, 3) float RGB in [0, 1].
      style: one (h, w, 3) image or a list of them.
      config: a :class:`StylizeConfig` (default: neural-style's settings).
      weights: VGG-19 weights (path or pytree; default: the fetched ImageNet weights).
      callback: receives an :class:`nst_jax.runinfo.Event` (as every method's callback) after every chunk
        of iterations.
      **settings: :class:`StylizeConfig` fields by name (``iters=300``), replacing ``config``'s.

    Returns:
      ``(image, report)``: (H, W, 3) float32 in [0, 1] and a dict of timings, evaluations and losses.
    """
    results = stylize_many([Picture(content, style)], config, batch=1, weights=weights, callback=callback,
                           **settings)
    return collect(results, single=True)


__all__ = ["CHUNK", "CONTENT_LAYERS", "DTYPES", "HISTORY", "PER_PICTURE", "PIXEL_SCALE", "REJECT_FACTOR",
           "STYLE_LAYERS", "STYLIZE_CONFIG", "Config", "Execution", "Gatys", "LossWeights", "Objective",
           "Picture", "Result", "StylizeConfig", "StylizeInterrupted", "band_halo", "band_rows",
           "compute_targets", "content_targets", "footprint", "gatys_loss", "gatys_value_and_grad_banded",
           "image_terms", "init_states", "initial_image", "objective", "optimize", "row_sharding",
           "solver_for", "stack", "style_loss", "style_targets", "stylize", "stylize_many", "vgg19_params",
           "with_winograd"]
