"""``nst-jax video``: a clip (a video file or a folder of frames) through any method, temporally consistent
by default (:mod:`nst_jax.video`); frames streamed, finished frames kept in ``OUT.work/`` until the output is
made (:mod:`nst_jax.videoio`)."""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

from ..config import defaults
from ..errors import NSTError
from .common import (
    NO_DEFAULT,
    PRESERVE_COLOR_HELP,
    HelpFormatter,
    alpha,
    positive_int,
    size_or_none,
    style_spec,
    write_json,
)

# options of one method only (default None: the method's own default applies)
METHOD_OPTIONS = {
    "gatys": ("iters", "first_iters", "content_weight", "style_weight", "tv_weight", "init", "style_scale",
              "style_loss", "mask", "mask_mode"),
    "adain": ("alpha", "decoder", "style_size"),
    "sanet": ("alpha", "model", "style_size"),
    "fast": ("model", "style"),
}


class FrameProgress:
    """One progress bar over the clip's frames (done, remaining time)."""

    def __init__(self, total: int, done: int, quiet: bool, stream=None):
        self.bar = None
        self.quiet, self.stream = quiet, stream or sys.stderr  # the stderr of now (tests replace it)
        if not quiet:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, unit="frame", file=self.stream, dynamic_ncols=True,
                            mininterval=0.5, bar_format="{l_bar}{bar}| {n:.1f}/{total} frames "
                                                        "[{elapsed}<{remaining}]")
        self.start = done

    def __call__(self, done: float):
        if self.bar is not None:
            self.bar.n = self.start + done
            self.bar.refresh()

    def message(self, text: str, always: bool = False):
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        elif always or not self.quiet:
            print(text, file=self.stream, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _frame_list(text):
    try:
        values = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated frame distances, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive frame distances, e.g. 1 or 1,10,20,40, got "
                                         f"{text!r}")
    return values


NAME = "video"
HELP = "a clip (video file or folder of frames), temporally consistent (Ruder et al. 2016)"


def add_parser(sub) -> None:
    """The ``video`` subcommand on ``sub``."""
    from .. import adain, feedforward, gatys, video
    from ..flow import FLOWS
    from ..regions import MASK_MODES
    from ..style import STYLE_LOSSES

    v = video.VIDEO_CONFIG
    gd, ad = defaults(gatys.StylizeConfig), defaults(adain.StylizeConfig)
    p = sub.add_parser(NAME, help=HELP,
                       formatter_class=HelpFormatter)
    p.add_argument("input", metavar="IN", help="a video file (.mp4, .webm, .mov, ...) or a folder of frames")
    p.add_argument("styles", nargs="*", metavar="STYLE",
                   help="style image(s) (gatys, adain, sanet; not fast)")
    p.add_argument("-o", "--output", required=True,
                   help="a video file (.mp4, .webm, .mov, .mkv, .avi) or a folder for PNG frames")
    p.add_argument("--method", choices=video.METHODS, default=v.method, help="gatys, adain, sanet or fast")
    p.add_argument("--size", type=size_or_none, default=None,
                   help="longest side in px (default: the frames' own)" + NO_DEFAULT)
    p.add_argument("--no-temporal", action="store_true", help="frame by frame, no temporal consistency")
    p.add_argument("--temporal-weight", type=float, default=v.temporal_weight,
                   help="weight of the temporal loss (default: gatys 1e3, Ruder et al.'s; "
                        + ", ".join(f"{k} {v:g}" for k, v in video.NETWORK_TEMPORAL_WEIGHTS.items()) + ")"
                        + NO_DEFAULT)
    p.add_argument("--temporal-frames", type=_frame_list, default=v.temporal_frames,
                   help="earlier frames (distances) whose results constrain each frame; 1,10,20,40: Ruder et "
                        "al.'s long-term loss (default: " + ",".join(map(str, v.temporal_frames)) + ")"
                        + NO_DEFAULT)
    p.add_argument("--flow", choices=FLOWS, default=v.flow, help="OpenCV's optical flow: DIS or Farneback")
    p.add_argument("--batch", type=positive_int, default=v.batch,
                   help=f"frame by frame: frames at once (default: {video.BATCH} on a GPU/TPU, 1 on a CPU)"
                   + NO_DEFAULT)
    p.add_argument("--fps", type=float, default=None,
                   help="frame rate of a video made from a folder of frames (default: the input's; 25 for a "
                        "folder)" + NO_DEFAULT)
    p.add_argument("--preserve-color", choices=("luminance", "histogram"), default=None,
                   help=PRESERVE_COLOR_HELP)
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from OUT.work/")
    g = p.add_argument_group("gatys")
    g.add_argument("--iters", type=positive_int, default=None,
                   help=f"iterations per frame (default {v.iters}, Ruder et al.'s)" + NO_DEFAULT)
    g.add_argument("--first-iters", type=positive_int, default=None,
                   help="iterations of the first frame (default: twice --iters)" + NO_DEFAULT)
    for name in ("content", "style", "tv"):
        g.add_argument(f"--{name}-weight", type=float, default=None,
                       help=f"as for stylize (default {gd[name + '_weight']:g})" + NO_DEFAULT)
    g.add_argument("--init", choices=("content", "noise"), default=None,
                   help="the first frame's start (default: content)" + NO_DEFAULT)
    g.add_argument("--style-scale", type=float, default=None,
                   help=f"as for stylize (default {gd['style_scale']:g})" + NO_DEFAULT)
    g.add_argument("--mask", default=None, metavar="FILE",
                   help="spatial control for the clip: a grey mask, the first style inside (white), the "
                        "second outside; resized to the frames")
    g.add_argument("--mask-mode", choices=MASK_MODES, default=None,
                   help=f"how the mask reaches each VGG-19 layer (default: {gd['mask_mode']}; see stylize)")
    g.add_argument("--style-loss", choices=tuple(STYLE_LOSSES), default=None,
                   help="as for stylize (default: gram)" + NO_DEFAULT)
    g = p.add_argument_group("adain, sanet")
    g.add_argument("--alpha", type=alpha, default=None,
                   help=f"as for adain and sanet (default {ad['alpha']:g})" + NO_DEFAULT)
    g.add_argument("--decoder", default=None,
                   help="decoder .npz (default: the shipped one)" + NO_DEFAULT)
    g.add_argument("--style-size", type=size_or_none, default=None,
                   help=f"style images' longest side (default {ad['style_size']})" + NO_DEFAULT)
    g = p.add_argument_group("fast, sanet")
    g.add_argument("--model", default=None,
                   help="fast: a shipped model's or style's name, or a .npz; sanet: a SANet .npz (default: "
                        f"fast {feedforward.DEFAULT_MODEL}, or with --style the shipped network that paints "
                        "it; sanet the shipped one)" + NO_DEFAULT)
    g.add_argument("--style", nargs="+", metavar="NAME[=WEIGHT]", default=None,
                   help="with a network of several styles: which one, or a blend" + NO_DEFAULT)
    p.add_argument("--weights", default=None, help="VGG-19 weights file (gatys, adain, sanet)" + NO_DEFAULT)
    p.add_argument("--dtype", choices=("float32", "bfloat16"), default=None,
                   help="the networks' activations and convolutions (gatys, adain, sanet; default: float32): "
                        "bfloat16 is mixed precision, as for stylize" + NO_DEFAULT)
    p.add_argument("--report", help="write a JSON report here")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--no-compile-cache", action="store_true",
                   help="do not use the persistent XLA compilation cache")
    p.set_defaults(func=run)
    return p


def _check_options(args):
    for method, names in METHOD_OPTIONS.items():
        if method == args.method:
            continue
        given = [n for n in names if getattr(args, n) is not None and n not in METHOD_OPTIONS[args.method]]
        if given:
            opt = "--" + given[0].replace("_", "-")
            raise NSTError(f"{opt} is an option of --method {method}, not of --method {args.method}")
    if args.method == "fast" and args.dtype:
        raise NSTError("--dtype is an option of --method gatys, adain and sanet, not of --method fast")
    if args.method == "fast" and args.styles:
        raise NSTError("--method fast takes no style image: the network is the style (--model, --style)")
    if args.method != "fast" and not args.styles:
        raise NSTError(f"--method {args.method} needs one or more style images")
    if args.mask and len(args.styles) != 2:
        raise NSTError(f"--mask places two styles (inside, outside), not {len(args.styles)}: give two style "
                       "images")
    if args.method == "fast" and args.weights:
        raise NSTError("--weights (VGG-19) is not used by --method fast")
    if args.no_temporal and (args.temporal_weight is not None or args.first_iters is not None
                             or args.temporal_frames != (1,)):
        raise NSTError("--temporal-weight, --temporal-frames and --first-iters go with the temporal mode, "
                       "not --no-temporal")
    if args.batch is not None and args.method == "gatys" and not args.no_temporal:
        raise NSTError("--batch goes with frame by frame (--no-temporal) or a network: Ruder et al.'s frames "
                       "run one after the other")


def _method_config(args):
    """The method's StylizeConfig from the options given (the rest: its defaults) and what the method needs
    besides: ``(config, model, decoder)``."""
    from .. import adain, feedforward, gatys, sanet

    given = {k: v for k, v in vars(args).items() if v is not None}
    if args.method == "gatys":
        from .. import image as im

        names = set(defaults(gatys.StylizeConfig)) - {"iters", "size"}
        if args.mask:
            given["masks"] = im.load_image(args.mask)
        return gatys.StylizeConfig(size=None, **{k: given[k] for k in names if k in given}), None, None
    if args.method == "adain":
        names = set(defaults(adain.StylizeConfig)) - {"size"}
        decoder = adain.load_decoder(args.decoder)
        return adain.StylizeConfig(size=None, **{k: given[k] for k in names if k in given}), None, decoder
    if args.method == "sanet":
        names = set(defaults(sanet.StylizeConfig)) - {"size"}
        model = sanet.load_model(args.model)
        return sanet.StylizeConfig(size=None, **{k: given[k] for k in names if k in given}), model, None
    style = style_spec(args.style) if args.style else None
    params, meta = feedforward.load_model(args.model or feedforward.default_model(style))
    feedforward.choose_style(params, meta, style)
    conf = feedforward.StylizeConfig(size=None, preserve_color=args.preserve_color)
    return conf, (params, meta, style), None


def run_record(args, vconf, shape) -> dict:
    """What a resumed run must share with the interrupted one: every option, each file as the path it
    resolves to (so that a resume from another folder, or by another spelling of a path, is the same run)."""
    keep = {k: v for k, v in vars(args).items()
            if k not in ("func", "resume", "quiet", "report", "no_compile_cache")}
    if keep.get("dtype") == "float32":  # the default, said or not, is one run
        keep["dtype"] = None

    def where(p):
        return str(Path(p).expanduser().resolve())

    files = {"input": where(args.input), "output": where(args.output),
             "styles": [where(s) for s in args.styles]}
    for k in ("decoder", "weights", "model", "mask"):
        if keep.get(k) is not None and Path(keep[k]).expanduser().exists():
            files[k] = where(keep[k])
    return {**{k: (list(v) if isinstance(v, tuple) else v) for k, v in keep.items()}, **files,
            "shape": list(shape)}


def _check_files(args, video, videoio):
    """Every input and output checked before any work: ``(vconf, source, out)``."""
    _check_options(args)
    vconf = video.VideoConfig(method=args.method, temporal=not args.no_temporal,
                              temporal_weight=args.temporal_weight, temporal_frames=args.temporal_frames,
                              iters=args.iters or video.VIDEO_CONFIG.iters, first_iters=args.first_iters,
                              flow=args.flow, batch=args.batch)
    if args.fps is not None and args.fps <= 0:
        raise NSTError(f"--fps must be positive, not {args.fps:g}")
    source = videoio.open_source(args.input)
    out = videoio.check_output(args.output)
    for given in [args.input, *args.styles, *([args.mask] if args.mask else [])]:
        if out.resolve() == Path(given).expanduser().resolve():
            raise NSTError(f"the output {out} is the input {given}: choose another -o")
    if args.fps is not None and not videoio.is_video_path(out):
        raise NSTError("--fps sets a video file's frame rate; the output is a folder of frames")
    if args.report and not Path(args.report).expanduser().parent.is_dir():
        raise NSTError(f"report folder {Path(args.report).expanduser().parent} does not exist")
    return vconf, source, out


def run(args) -> int:
    from .. import image as im
    from .. import video, videoio
    from ..runinfo import DeferredInterrupt

    t0 = time.perf_counter()
    vconf, source, out = _check_files(args, video, videoio)
    styles = [im.load_image(s) for s in args.styles]
    conf, model, decoder = _method_config(args)
    shape = im.fit_shape(source.shape, args.size) if args.size else tuple(source.shape)
    if videoio.is_video_path(out):
        shape = videoio.even_shape(shape)
    fps = args.fps or source.fps or videoio.FOLDER_FPS
    if not args.no_compile_cache:
        from ..compile_cache import enable_compilation_cache

        enable_compilation_cache()
    work = videoio.WorkFolder(out, run_record(args, vconf, shape), args.resume)
    done = work.done()
    progress = FrameProgress(source.frames, done, args.quiet)
    failed = []

    def bad_frame(path, error):
        failed.append(str(path))
        progress.message(f"nst-jax: error: {error}", always=True)

    names, history, depth = [], [], max(vconf.temporal_frames)

    def frames():
        for name, frame in videoio.read_frames(source, bad_frame):
            frame = im.resize(frame, shape)
            names.append(name)
            if len(names) <= done:  # finished before: its input and result are the history of the next
                history.append((frame, work.load(len(names) - 1)))
                del history[:-depth]
                continue
            yield frame

    interrupt = DeferredInterrupt()

    def tick(d):
        interrupt.check()
        progress(d)

    stream = frames()
    first = next(stream, None)  # reads the frames finished before, so that the history is complete
    written = done
    try:
        with interrupt:
            if first is not None:
                results = video.stylize_video(itertools.chain([first], stream), styles, vconf, conf,
                                              model=model, decoder=decoder, weights=args.weights,
                                              history=history, progress=tick)
                for result in results:
                    work.save(written, result)
                    written += 1
    except KeyboardInterrupt:
        progress.close()
        print(f"nst-jax: interrupted; {written} finished frames kept in {work.path} (continue with --resume)",
              file=sys.stderr)
        return 130
    progress.close()
    if not written:
        work.discard()
        raise NSTError(f"{source.path}: no frame could be read")
    if failed and out.exists():  # a clip short of frames never replaces what the user has
        print(f"nst-jax: error: {len(failed)} frame(s) could not be read; {out} is left as it was and the "
              f"{written} finished frames are kept in {work.path}", file=sys.stderr)
        return 1
    result = work.finish(names[:written], fps, source, log=lambda m: print(f"nst-jax: {m}", file=sys.stderr))
    return _finish(args, vconf, result, written, done, failed, shape, fps, t0)


def _finish(args, vconf, result, written: int, done: int, failed: list, shape, fps, t0) -> int:
    """The report and the summary line; exit status 1 when a frame could not be read."""
    from ..runinfo import run_metadata

    seconds = time.perf_counter() - t0
    if args.report:
        write_json(args.report, {
            "method": args.method, "temporal": vconf.temporal,
            "temporal_weight": vconf.weight if vconf.temporal else None,
            "temporal_frames": list(vconf.temporal_frames), "flow": vconf.flow, "input": str(args.input),
            "output": str(result), "frames": written, "resumed_from": done, "failed": failed,
            "height": int(shape[0]), "width": int(shape[1]), "fps": float(fps), "seconds": seconds,
            "seconds_per_frame": seconds / max(1, written - done), **run_metadata()})
    if not args.quiet:
        print(f"saved {result} ({written} frames, {shape[1]}x{shape[0]}, {seconds:.1f}s)"
              + (f"; {len(failed)} frame(s) could not be read" if failed else ""), file=sys.stderr)
    return 1 if failed else 0
