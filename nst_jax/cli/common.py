"""What every ``nst-jax`` subcommand shares: argument types and groups, the parser, progress on stderr,
JSON reports, and the one-line handling of what a user can get wrong."""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from pathlib import Path

from ..errors import NSTError
from ..fileio import atomic_write
from ..tiling import is_main_process, parse_tile


def api_defaults(fn):
    return {k: v.default for k, v in inspect.signature(fn).parameters.items()
            if v.default is not inspect.Parameter.empty}


def training_defaults(fn):
    """A trainer's defaults: its keywords' and its default TrainConfig's fields."""
    from dataclasses import asdict

    d = api_defaults(fn)
    return {**asdict(d.pop("config")), **d}


# appended to a help text that states its default itself: formats to nothing, and tells argparse's
# ArgumentDefaultsHelpFormatter not to add "(default: None)"
NO_DEFAULT = "%(default).0s"


def floats(text):
    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def names(text):
    return tuple(t.strip() for t in text.split(",") if t.strip())


def positive_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def non_negative_float(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not v >= 0.0:  # also NaN
        raise argparse.ArgumentTypeError(f"expected a number of 0 or more, got {text}")
    return v


def alpha(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"alpha must be in [0, 1], got {v}")
    return v


def size_or_none(text):
    """A longest side in px, or ``none`` (also ``original``): the image's own size."""
    if text.lower() in ("none", "original"):
        return None
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a size in px or 'none', got {text!r}") from None


def sweep_values(kind, minimum=None):
    """An argparse type: one value or several, comma-separated (each one picture of a sweep); ``minimum``:
    the smallest value allowed.  The same value twice would be two pictures of one file: refused."""
    def parse(text):
        try:
            values = [kind(t) for t in text.split(",") if t.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {kind.__name__}s, got {text!r}") \
                from None
        if not values:
            raise argparse.ArgumentTypeError(f"expected a value, got {text!r}")
        if minimum is not None and min(values) < minimum:
            raise argparse.ArgumentTypeError(f"expected values of at least {minimum:g}, got {min(values):g}")
        if len(set(values)) != len(values):
            same = next(v for v in values if values.count(v) > 1)
            raise argparse.ArgumentTypeError(f"{same:g} is given twice in {text!r}: each value is one "
                                             "picture, written to one file")
        return values if len(values) > 1 else values[0]
    return parse


def tile(text):
    """``--tile``: auto, none or a band height in px (:func:`nst_jax.tiling.parse_tile`)."""
    try:
        return parse_tile(text)
    except NSTError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each option's default once: none added where the help states it or where there is none (a required
    option, a flag), and a sequence as the comma-separated text the option takes."""

    def _get_help_string(self, action):
        text = action.help or ""
        absent = action.default is None or action.default is False or action.default == argparse.SUPPRESS
        if "%(default)" in text or "default" in text.lower() or action.required or absent \
                or not action.option_strings:
            return text
        return text + " (default: %(default)s)"

    def _expand_help(self, action):
        if isinstance(action.default, (tuple, list)):
            action = argparse.Action(action.option_strings, action.dest, default=",".join(
                str(v) for v in action.default), help=action.help)
        return super()._expand_help(action)


def style_spec(items) -> dict:
    """``["a", "b=0.3"]`` -> ``{"a": 1.0, "b": 0.3}`` (a name alone weighs 1)."""
    spec: dict = {}
    for item in items:
        name, _, weight = item.partition("=")
        try:
            spec[name] = spec.get(name, 0.0) + (float(weight) if weight else 1.0)
        except ValueError:
            raise NSTError(f"--style takes NAME or NAME=WEIGHT, not {item!r}") from None
    return spec


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, as argparse does, without the usage block
        self.exit(2, f"{self.prog}: error: {message}\n")


PRESERVE_COLOR_HELP = ("luminance: keep the photo's colours; histogram: recolour the styles to the photo's "
                       "first (default: neither)" + NO_DEFAULT)


class ProgressBar:
    """Every command's progress on stderr, from the methods' :class:`nst_jax.runinfo.Event`s: a tqdm bar
    per scale for iterations (loss, elapsed and remaining time; updated between compiled chunks), one
    line per stage message otherwise."""

    def __init__(self, quiet=False, stream=None):
        self.quiet, self.stream = quiet, stream or sys.stderr  # the stderr of now
        self.bar, self.scale = None, None

    def __call__(self, it):
        if self.quiet:
            return
        if not it.iterations:
            self.message(str(it))
            return
        if self.bar is None or self.scale != it.scale:
            from tqdm import tqdm

            self.close()
            self.scale = it.scale
            desc = f"scale {it.scale}/{it.scales}" if it.scales > 1 else None
            # no rate: the first chunk compiles and later ones arrive in bursts, so a rate would mislead
            self.bar = tqdm(total=it.iterations, desc=desc, unit="it", file=self.stream, dynamic_ncols=True,
                            mininterval=0.5,
                            bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]")
        # the bar's own clock starts after the first chunk (which compiles): the run's time is given too
        self.bar.set_postfix_str(f"loss {it.loss:.4g}, {it.seconds:.0f}s in all", refresh=False)
        self.bar.update(it.iteration - self.bar.n)
        if it.iteration >= it.iterations:
            self.close()

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def message(self, text):
        if not self.quiet:
            self.close()
            self.stream.write(text + "\n")
            self.stream.flush()


class PictureProgress:
    """One progress bar over the pictures of a folder or sweep (done, remaining time), advanced by each
    batch's iterations as they run and by each picture written."""

    def __init__(self, total: int, quiet=False, stream=None):
        self.quiet, self.stream, self.total, self.done = quiet, stream or sys.stderr, total, 0
        self.bar = None
        if not quiet:
            from tqdm import tqdm

            # shown after half a second: a run refused at once prints its one line of error alone
            self.bar = tqdm(total=total, unit="picture", file=stream, dynamic_ncols=True, mininterval=0.5,
                            delay=0.5,
                            bar_format="{l_bar}{bar}| {n:.1f}/{total} pictures [{elapsed}<{remaining}]")

    def __call__(self, it):
        if self.bar is None:
            return
        if not it.iterations:
            return
        part = ((it.scale - 1) * it.iterations + it.iteration) / (it.scales * it.iterations)
        self.bar.n = min(self.total, self.done + it.batch * part)
        self.bar.refresh()

    def finished(self, n: int = 1):
        self.done += n
        if self.bar is not None:
            self.bar.n = max(self.bar.n, self.done)
            self.bar.refresh()

    def drop(self, n: int):
        """``n`` pictures fewer to do (their inputs could not be read)."""
        self.total -= n
        if self.bar is not None and n:
            self.bar.total = self.total
            self.bar.refresh()

    def message(self, text, always=False):
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        elif always or not self.quiet:
            self.stream.write(text + "\n")
            self.stream.flush()

    def error(self, text):
        """One line on stderr, also with ``--quiet``: an input that failed, named."""
        self.message(f"nst-jax: error: {text}", always=True)

    def close(self, leave: bool = True):
        """Finish the bar (``leave=False``: erase it, for a run that stops with one line of error)."""
        if self.bar is not None:
            self.bar.leave = leave
            self.bar.close()
            self.bar = None


def hms(seconds):
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else \
        f"{seconds // 60}m{seconds % 60:02d}s"


def write_json(path, data):

    path = Path(path).expanduser()
    if not path.parent.is_dir():
        raise NSTError(f"report folder {path.parent} does not exist")
    atomic_write(path, lambda f: f.write(json.dumps(data, indent=2, default=float) + "\n"), binary=False)


def image_arguments(p):
    p.add_argument("content", help="content image, or a folder: every image in it (sorted)")
    p.add_argument("styles", nargs="+", metavar="STYLE", help="one or more style images")
    p.add_argument("-o", "--output", required=True,
                   help="output image (.png, .jpg, ...) or a folder to put CONTENT.png in; with a folder of "
                        "contents or a sweep, a folder (one CONTENT.png each)")


def many_arguments(p, note: str = ""):
    p.add_argument("--batch", type=positive_int, default=None,
                   help="pictures run at once, one compiled program (default: on a GPU/TPU as many as fit "
                        f"in memory, on a CPU one at a time){note}" + NO_DEFAULT)
    p.add_argument("--skip-existing", action="store_true",
                   help="with a folder or a sweep: leave out pictures whose output exists (resume a run)")


def run_arguments(p, report=True):
    if report:
        p.add_argument("--report", help="write a JSON report here")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--no-compile-cache", action="store_true",
                   help="do not use the persistent XLA compilation cache")
    distributed_arguments(p)


def distributed_arguments(p, training=False):
    g = p.add_argument_group("several processes (hosts), one program (jax.distributed)")
    spans = ("every batch is split across every host's devices" if training
             else "--devices all then spans every host's devices")
    g.add_argument("--distributed", action="store_true",
                   help="join the other processes of a multi-host run first (jax.distributed.initialize); "
                        "on a Cloud TPU slice, SLURM or Open MPI they are found from the environment. Start "
                        f"the same command in every process; {spans}, and process 0 writes the files")
    g.add_argument("--coordinator", metavar="HOST:PORT", help="elsewhere: process 0's address")
    g.add_argument("--num-processes", type=positive_int, metavar="N", help="elsewhere: how many processes")
    g.add_argument("--process-id", type=int, metavar="I", help="elsewhere: this process's number, 0..N-1")


def size_arguments(p, d):
    """``--devices`` and ``--tile`` of the feed-forward commands (nst_jax.tiling), defaults from ``d``."""
    p.add_argument("--devices", default=d["devices"],
                   help="N or all: split the picture by rows across N devices (default: one device)"
                        + NO_DEFAULT)
    p.add_argument("--tile", type=tile, default=d["tile"],
                   help="auto: a band of rows at a time when the whole picture would not fit in memory (the "
                        "same result); none; or a band height in px")


# what lowers the peak (--remat does not, for this objective: BENCHMARKS.md "Time and memory against size")
OOM_HINT = ("out of memory; try --tile (a band of rows at a time), --history-dtype bfloat16 (stylize), "
            "--batch 1, or a smaller --size")


def is_oom(e: BaseException) -> bool:
    text = str(e)
    return "RESOURCE_EXHAUSTED" in text or "Out of memory" in text or "out of memory" in text


def start_distributed(args):
    given = [getattr(args, k, None) is not None for k in ("coordinator", "num_processes", "process_id")]
    if not getattr(args, "distributed", False):
        if any(given):
            raise NSTError("--coordinator, --num-processes and --process-id go with --distributed")
        return
    from ..tiling import initialize_distributed

    initialize_distributed(args.coordinator, args.num_processes, args.process_id)
    if not is_main_process():
        args.quiet = True  # one progress report: process 0's


def arbitrary_style_arguments(a, d) -> None:
    """The options AdaIN and SANet share (``d``: the method's defaults): style interpolation, a mask, colour
    preservation, the sizes and the precision."""
    a.add_argument("--style-blend", type=floats, default=d["style_blend"],
                   help="comma-separated interpolation weights, one per style (default: equal)")
    a.add_argument("--mask", help="grey mask image: the first style inside (white), the second outside")
    a.add_argument("--preserve-color", choices=("luminance", "histogram"), default=d["preserve_color"],
                   help=PRESERVE_COLOR_HELP)
    a.add_argument("--size", type=size_or_none, default=d["size"],
                   help="content (and output) longest side in px; 'none' keeps the original")
    a.add_argument("--style-size", type=size_or_none, default=d["style_size"],
                   help="style images' longest side in px; 'none' keeps the original")
    a.add_argument("--dtype", choices=("float32", "bfloat16"), default=d["dtype"],
                   help="bfloat16: mixed precision for GPU/TPU; slower on a CPU")
