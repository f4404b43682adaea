"""Stylising video: every method, frame by frame or temporally consistent (Ruder, Dosovitskiy & Brox 2016).

Frame by frame, each frame's optimisation or network places strokes anew and the clip flickers.  The temporal
modes tie each frame to the previous results moved with the scene: the optical flow from frame t to an earlier
frame t-j (:mod:`nst_jax.flow`) warps that frame's result onto frame t, and the forward-backward check says
where the warp can be trusted (weights ``c``: 0 at disocclusions, motion boundaries, and where the flow leaves
the frame).

* **Gatys** (Ruder et al.): each frame after the first starts from the previous result warped onto it, and
  its objective gains the temporal loss ``temporal_weight * sum_j mean(c_j (x - warp_j)^2)``
  (:func:`nst_jax.gatys.image_terms`); ``temporal_frames`` are the j (``(1,)``: the short-term loss;
  ``(1, 10, 20, 40)``: the paper's long-term loss, each pixel counted by the closest frame that sees it).
  Frames run one after the other (each needs its predecessor); the first gets ``first_iters`` iterations.
* **AdaIN and fast networks**: the network stylises frames (in batches on a GPU or TPU); then each frame
  is the minimiser of ``|x - f_t|^2 + temporal_weight * sum_j c_j |x - warp_j|^2`` per pixel, ``f_t`` the
  network's output: the same temporal loss with fidelity to the network in place of VGG's terms, solved in
  closed form, ``x = (f_t + lambda sum_j c_j warp_j) / (1 + lambda sum_j c_j)`` (BENCHMARKS.md measures it
  against running Gatys iterations from the network's output).

Without ``temporal``, every method goes frame by frame (in batches of frames on a GPU or TPU).  Frames are
streamed: only the last ``max(temporal_frames)`` inputs and results are held.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from typing import Callable, Iterable, Iterator

import numpy as np

from . import flow as fl
from .errors import NSTError

METHODS = ("gatys", "adain", "sanet", "fast")
# The temporal weight of the networks' closed form (Gatys: Ruder et al.'s, gatys.LossWeights.temporal): of
# the weights measured, the largest whose frames stay within 1.2x the frame-by-frame style distance (mean of
# the pan and zoom clips, BENCHMARKS.md "Video"); larger weights steady the clip further and wash out strokes.
# SANet's is AdaIN's, not yet measured for it.
NETWORK_TEMPORAL_WEIGHTS = {"adain": 0.25, "sanet": 0.25, "fast": 0.5}
BATCH = 8  # frames read at once by the frame-by-frame paths (run as tiling.plan batches them)


@dataclasses.dataclass(frozen=True)
class VideoConfig:
    """How a clip is stylised (the method's own settings are its ``StylizeConfig``).

    Fields:
      method: ``"gatys"``, ``"adain"``, ``"sanet"`` or ``"fast"``.
      temporal: tie each frame to the earlier results (module notes); ``False``: frame by frame.
      temporal_weight: ``None``: the method's (Gatys: Ruder et al.'s 1e3; networks:
        :data:`NETWORK_TEMPORAL_WEIGHTS`).
      temporal_frames: the earlier frames j (1: the previous one) whose results constrain frame t.
      iters: Gatys's iterations per frame (Ruder et al.'s 1000); first_iters: the first frame's (``None``:
        twice ``iters``, as the paper's 2000).
      flow: ``"dis"`` or ``"farneback"`` (OpenCV).
      batch: frames at once on the frame-by-frame paths (``None``: :data:`BATCH` read at once, run as
        :func:`nst_jax.tiling.plan` batches them: all on a GPU or TPU, one at a time on a CPU).
    """

    method: str = "gatys"
    temporal: bool = True
    temporal_weight: float | None = None
    temporal_frames: tuple[int, ...] = (1,)
    iters: int = 1000
    first_iters: int | None = None
    flow: str = "dis"
    batch: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "temporal_frames", tuple(sorted({int(j) for j in self.temporal_frames})))
        if self.method not in METHODS:
            raise NSTError(f"method must be one of {', '.join(METHODS)}, not {self.method!r}")
        if not self.temporal_frames or min(self.temporal_frames) < 1:
            raise NSTError("temporal frames must be positive frame distances, e.g. 1 or 1,10,20,40")
        if self.temporal_weight is not None and self.temporal_weight < 0:
            raise NSTError(f"temporal weight must be at least 0, not {self.temporal_weight}")
        if self.iters < 1 or (self.first_iters is not None and self.first_iters < 1):
            raise NSTError("iterations must be at least 1")
        if self.flow not in fl.FLOWS:
            raise NSTError(f"flow must be one of {', '.join(fl.FLOWS)}, not {self.flow!r}")
        if self.batch is not None and self.batch < 1:
            raise NSTError(f"batch must be at least 1, not {self.batch}")

    @property
    def weight(self) -> float:
        if self.temporal_weight is not None:
            return float(self.temporal_weight)
        if self.method == "gatys":
            from .gatys import LossWeights

            return float(LossWeights.temporal)
        return NETWORK_TEMPORAL_WEIGHTS[self.method]


VIDEO_CONFIG = VideoConfig()


class _History:
    """The last ``depth`` input frames and their results, and what frame t needs from them: each earlier
    result j frames back warped onto frame t, and its trust weights (long-term: closest first)."""

    def __init__(self, frames: tuple[int, ...], flow: str, history=()):
        self.frames, self.flow = frames, flow
        self.items = deque(history, maxlen=max(frames))

    def add(self, frame, result):
        self.items.append((frame, result))

    def warped(self, frame):
        """``(previous, weights)``: one entry per j of ``frames`` (weight 0 where there is no such frame)."""
        previous, weights = [], []
        for j in self.frames:
            if j <= len(self.items):
                earlier, result = self.items[-j]
                backward, c = fl.reliable_flow(frame, earlier, self.flow)
                previous.append(fl.warp(result, backward, fill=frame))
                weights.append(c)
            else:
                previous.append(np.asarray(frame, np.float32))
                weights.append(np.zeros(frame.shape[:2], np.float32))
        return previous, fl.long_term_weights(weights)


def _batches(frames: Iterable, size: int) -> Iterator[list]:
    chunk = []
    for f in frames:
        chunk.append(f)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def stylize_video(frames: Iterable[np.ndarray], styles, config: VideoConfig = VIDEO_CONFIG,
                  method_config=None, *, model=None, decoder=None, weights=None, history=(),
                  progress: Callable[[float], None] | None = None, starts: Iterable | None = None
                  ) -> Iterator[np.ndarray]:
    """Stylise a clip, yielding each result frame in order (streamed).

    Args:
      frames: (H, W, 3) float32 frames in [0, 1], all of one shape (the size they are stylised at).
      styles: the style image(s) (Gatys, AdaIN, SANet); ``None`` for a fast network.
      config: a :class:`VideoConfig`.
      method_config: the method's ``StylizeConfig`` (:mod:`nst_jax.gatys`, :mod:`nst_jax.adain`,
        :mod:`nst_jax.feedforward`); its ``size`` is not used (the frames' own is).
      model: the fast network, as :func:`nst_jax.feedforward.stylize` takes it (``None``: the default
        network; a name or a ``.npz``; ``(params, meta)``), or ``(params, meta, style)`` with the style of a
        network of several; for SANet its ``.npz`` or ``(params, meta)`` (default: shipped); decoder:
        AdaIN's (default: shipped).
      weights: VGG-19 weights (default: the fetched ImageNet weights).
      history: ``(input, result)`` pairs of the frames before these, oldest first (to resume a clip).
      progress: called with the frames finished so far (fractional within a Gatys frame).
      starts: temporal Gatys only: each frame's starting image instead of the previous result warped
        (e.g. a network's output: BENCHMARKS.md "Video" measures that refinement).
    """
    progress = progress or (lambda done: None)
    if starts is not None and not (config.method == "gatys" and config.temporal):
        raise NSTError("starting images (starts=) go with the temporal Gatys mode")
    if config.method == "gatys" and config.temporal:
        yield from _gatys_temporal(frames, styles, config, method_config, weights, history, progress,
                                   None if starts is None else iter(starts))
        return
    run = {"gatys": _gatys_frames, "adain": _adain_frames, "sanet": _sanet_frames,
           "fast": _fast_frames}[config.method]
    model, decoder, weights = _networks(config.method, model, decoder, weights)
    past = _History(config.temporal_frames, config.flow, history)
    done = 0
    for chunk in _batches(frames, config.batch or BATCH):
        outs = run(chunk, styles, config, method_config, model=model, decoder=decoder, weights=weights,
                   progress=lambda part, d=done: progress(d + part))
        for frame, out in zip(chunk, outs, strict=True):
            if config.temporal:
                out = _blend(out, *past.warped(frame), config.weight)
                past.add(frame, out)
            done += 1
            progress(done)
            yield out


def _networks(method: str, model, decoder, weights):
    """The method's networks loaded once for the clip (the frames run in chunks)."""
    if method == "fast" and not isinstance(model, (tuple, dict)):
        from .feedforward import default_model, load_model

        model = load_model(default_model() if model is None else model)
    if method == "sanet" and not isinstance(model, (tuple, dict)):
        from .sanet import load_model

        model = load_model(model)  # (params, meta): the decoder's upsampling is in meta
    if method in ("gatys", "adain", "sanet") and not isinstance(weights, dict):
        from .vgg import vgg19_params

        if method == "adain":
            from .adain import ENCODER_LAYER as upto
        elif method == "sanet":
            from .sanet import ENCODER_LAYERS as upto
        else:
            upto = None  # Gatys: all of them (its settings choose its layers)
        weights = vgg19_params(weights, upto=upto)
    if method == "adain" and not isinstance(decoder, (dict, tuple)):
        from .adain import load_decoder

        decoder = load_decoder(decoder)  # (params, meta): the decoder's upsampling is in meta
    return model, decoder, weights


def _blend(out, previous, weights, lam: float):
    """The per-pixel minimiser of ``|x - out|^2 + lam sum_j c_j |x - previous_j|^2``."""
    num = np.asarray(out, np.float64).copy()
    den = np.ones(out.shape[:2] + (1,))
    for p, c in zip(previous, weights, strict=True):
        num += lam * c[..., None] * p
        den += lam * c[..., None]
    return np.clip(num / den, 0, 1).astype(np.float32)


def _results(results, n: int) -> list:
    """The images of a run's :class:`nst_jax.run.Result` s in frame order; a failed frame stops the clip."""
    out = [None] * n
    for r in results:
        if r.error is not None:
            raise r.error
        out[r.index] = r.image
    return out


def _fast_frames(chunk, styles, config, conf, *, model, progress, **_):
    from . import feedforward

    network, style = model, None
    if isinstance(model, tuple) and len(model) == 3:  # (params, meta, style)
        network, style = model[:2], model[2]
    conf = dataclasses.replace(conf or feedforward.STYLIZE_CONFIG, size=None)
    return _results(feedforward.stylize_many(list(chunk), network, conf, style=style, batch=config.batch),
                    len(chunk))


def _adain_frames(chunk, styles, config, conf, *, decoder, weights, progress, **_):
    from . import adain

    conf = dataclasses.replace(conf or adain.STYLIZE_CONFIG, size=None)
    return _results(adain.stylize_many(list(chunk), styles, conf, decoder=decoder, weights=weights,
                                       batch=config.batch), len(chunk))


def _sanet_frames(chunk, styles, config, conf, *, model, weights, progress, **_):
    from . import sanet

    conf = dataclasses.replace(conf or sanet.STYLIZE_CONFIG, size=None)
    return _results(sanet.stylize_many(list(chunk), styles, conf, model=model, weights=weights,
                                       batch=config.batch), len(chunk))


def _gatys_frames(chunk, styles, config, conf, *, weights, progress, **_):
    from . import gatys

    conf = dataclasses.replace(conf or gatys.STYLIZE_CONFIG, size=None, iters=config.iters)
    finished = []

    def callback(it):
        if it.iterations:
            progress(len(finished) + it.batch * it.iteration / it.iterations * 0.999)

    def results():
        for r in gatys.stylize_many([gatys.Picture(f, styles) for f in chunk], conf, batch=config.batch,
                                    weights=weights, callback=callback):
            finished.append(r.index)
            yield r

    return _results(results(), len(chunk))


def _gatys_temporal(frames, styles, config: VideoConfig, conf, weights, history, progress, starts=None):
    """Ruder et al.: one frame at a time, each from the previous result warped onto it, with the temporal
    loss; one compiled program for every frame (the first has its temporal weights at 0).  ``starts``: an
    iterator of each frame's starting image instead (e.g. a network's output, BENCHMARKS.md "Video")."""
    from . import gatys
    from . import image as im

    conf = dataclasses.replace(conf or gatys.STYLIZE_CONFIG, size=None)
    first_iters = config.first_iters or 2 * config.iters
    # one method object for the clip: the network, the solver (whose memory fits both lengths), the style
    # targets computed once, the programs compiled once
    method = gatys.Gatys(conf, weights=weights, iters=max(config.iters, first_iters))
    past = _History(config.temporal_frames, config.flow, history)
    done = 0
    for frame in frames:
        job = method.prepare(0, gatys.Picture(frame, styles))
        content = job.content[None]
        targets = method.targets(content, [job], job.shape)
        previous, trust = past.warped(job.content)
        targets["temporal"] = {"previous": np.stack(previous).astype(np.float32)[None, :, None],
                               "weights": np.stack(trust).astype(np.float32)[None, :, None, ..., None]}
        first = not past.items
        if starts is not None:
            x0 = np.asarray(next(starts), np.float32)[None]
        elif first:
            x0 = gatys.initial_image(conf.init, content, job.data.styles[0], conf.seed)
        else:
            x0 = previous[0][None]
        wts = dataclasses.replace(job.data.conf.loss_weights, temporal=config.weight)
        iters = first_iters if first else config.iters

        def callback(it, d=done, n=iters):
            progress(d + min(it.iteration / n, 0.999))

        x, info = method.optimize(np.asarray(x0, np.float32), targets,
                                  gatys.stack([wts.as_arrays(len(conf.style_layers))]), iters=iters,
                                  callback=callback)
        raw = np.clip(np.asarray(x[0]), 0, 1)
        if not np.isfinite(info["loss"][0]):
            raise NSTError("the optimisation diverged (loss is not finite); lower the style or temporal "
                           "weight")
        out = im.preserve_color(conf.preserve_color, job.content, stylised=raw)
        past.add(job.content, raw)
        done += 1
        progress(done)
        yield out


__all__ = ["METHODS", "NETWORK_TEMPORAL_WEIGHTS", "VideoConfig", "stylize_video"]
