"""The ``nst-jax`` command: a thin shell over the Python API.

Every option's default is read from the API function's keyword default, so each default lives once.
User errors print one line on stderr and exit 1 (2 for bad command-line syntax, 130 for Ctrl-C);
outputs are written atomically.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import time
from pathlib import Path

from .config import as_dict, defaults
from .errors import NSTError
from .fileio import atomic_write
from .tiling import is_main_process


def _defaults(fn):
    return {k: v.default for k, v in inspect.signature(fn).parameters.items()
            if v.default is not inspect.Parameter.empty}


def _training_defaults(fn):
    """A trainer's defaults: its keywords' and its default TrainConfig's fields."""
    from dataclasses import asdict

    d = _defaults(fn)
    return {**asdict(d.pop("config")), **d}


# appended to a help text that states its default itself: formats to nothing, and tells argparse's
# ArgumentDefaultsHelpFormatter not to add "(default: None)"
_NO_DEFAULT = "%(default).0s"


def _floats(text):
    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _names(text):
    return tuple(t.strip() for t in text.split(",") if t.strip())


def _positive_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, as argparse does, without the usage block
        self.exit(2, f"{self.prog}: error: {message}\n")


# --------------------------------------------------------------------------------------------------
# progress
# --------------------------------------------------------------------------------------------------

class ProgressBar:
    """Every command's progress on stderr, from the methods' :class:`nst_jax.runinfo.Event`s: a tqdm bar
    per scale for iterations (loss, elapsed and remaining time; updated between compiled chunks), one
    line per stage message otherwise."""

    def __init__(self, quiet=False, stream=sys.stderr):
        self.quiet, self.stream = quiet, stream
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


# --------------------------------------------------------------------------------------------------
# commands
# --------------------------------------------------------------------------------------------------

def _cmd_weights_fetch(args):
    from . import weights

    path = weights.fetch(force=args.force, log=lambda m: print(m, file=sys.stderr))
    print(path)


def _cmd_weights_convert(args):
    from . import weights

    print(weights.convert(args.src, args.dst))


def _write_json_atomic(path, data):

    path = Path(path).expanduser()
    if not path.parent.is_dir():
        raise NSTError(f"report folder {path.parent} does not exist")
    atomic_write(path, lambda f: f.write(json.dumps(data, indent=2, default=float) + "\n"), binary=False)


def _image_inputs(args):
    """What ``stylize`` and ``adain`` check and read before any work: the output path, ``--tile``, the
    report's folder; then the content and style images.  Returns ``(output, content, styles)``."""
    from . import image as im
    from .tiling import parse_tile

    out = im.check_output(args.output)
    parse_tile(args.tile)
    if args.report:
        rp = Path(args.report).expanduser()
        if not rp.parent.is_dir():
            raise NSTError(f"report folder {rp.parent} does not exist")
    return out, im.load_image(args.content), [im.load_image(s) for s in args.styles]


def _intermediate_path(out: Path, iteration: int, scale: int, scales: int) -> Path:
    tag = f"_s{scale}" if scales > 1 else ""
    return out.with_name(f"{out.stem}{tag}_{iteration:05d}{out.suffix}")


def _cmd_stylize(args):
    from . import gatys
    from . import image as im
    from .compile_cache import enable_compilation_cache
    from .runinfo import DeferredInterrupt

    sweep = {k: getattr(args, k) for k in SWEEPS if isinstance(getattr(args, k), list)}
    if sweep or Path(args.content).expanduser().is_dir():
        return _cmd_stylize_many(args, sweep)
    out, content, styles = _image_inputs(args)
    init = args.init
    if init not in ("content", "noise", "style"):
        init = im.load_image(init)
    if not args.no_compile_cache:
        enable_compilation_cache()
    progress = ProgressBar(args.quiet)
    # Ctrl-C is honoured by the callback, between compiled chunks (never inside JAX's own code): the
    # current image is saved; a second Ctrl-C aborts at once.
    interrupt = DeferredInterrupt()

    def callback(it):
        interrupt.check()
        progress(it)
        if it.image is not None and args.save_every and is_main_process():
            im.save_image(_intermediate_path(out, it.iteration, it.scale, it.scales), it.image)

    conf = gatys.StylizeConfig(**{name: getattr(args, name) for name in defaults(gatys.StylizeConfig)
                                  if name != "init"}, init=init)
    try:
        with interrupt:
            result, report = gatys.stylize(content, styles, conf, weights=args.weights, callback=callback)
    except gatys.StylizeInterrupted as e:
        progress.close()
        if is_main_process():
            im.save_image(out, e.image)
        scales = e.report["scales"]
        at = f" of scale {len(scales)}/{args.scales}" if args.scales > 1 else ""
        print(f"nst-jax: interrupted; saved the current image (iteration {e.report['iterations']}/"
              f"{args.iters}{at}) to {out}", file=sys.stderr)
        return 130
    if not is_main_process():
        return 0
    im.save_image(out, result)
    if args.report:
        from .runinfo import run_metadata

        report.update(content=str(args.content), styles=[str(s) for s in args.styles],
                      output=str(out), **run_metadata(),
                      options={**{k: v for k, v in as_dict(conf).items() if k != "init"},
                               "weights": args.weights},
                      init=args.init)
        _write_json_atomic(args.report, report)
    progress.message(f"saved {out} ({report['width']}x{report['height']}, "
                     f"{report['evaluations']} evaluations, {report['seconds']:.1f}s)")
    return 0


# --------------------------------------------------------------------------------------------------
# many pictures: a folder of contents, a sweep of values
# --------------------------------------------------------------------------------------------------

SWEEPS = ("content_weight", "style_weight", "tv_weight", "seed")  # options that take comma-separated values


def _sweep_values(kind):
    """An argparse type: one value or several, comma-separated (each one picture of a sweep)."""
    def parse(text):
        try:
            values = [kind(t) for t in text.split(",") if t.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {kind.__name__}s, got {text!r}") \
                from None
        if not values:
            raise argparse.ArgumentTypeError(f"expected a value, got {text!r}")
        return values if len(values) > 1 else values[0]
    return parse


def _content_files(path) -> list[Path]:
    """A content image, or every image file of a folder (sorted by name; hidden files and files whose
    extension no image format has are left out)."""
    from .image import image_files

    p = Path(path).expanduser()
    if not p.is_dir():
        return [p]
    files = image_files(p)
    if not files:
        raise NSTError(f"{p} holds no image files")
    return files


def _output_folder(output) -> Path:
    out = Path(output).expanduser()
    if out.exists() and not out.is_dir():
        raise NSTError(f"{out} is a file: with a folder of contents or a sweep, -o names a folder")
    if not out.parent.is_dir():
        raise NSTError(f"folder {out.parent} does not exist")
    return out


def _value_text(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


class PictureProgress:
    """One progress bar over the pictures of a folder or sweep (done, remaining time), advanced by each
    batch's iterations as they run and by each picture written."""

    def __init__(self, total: int, quiet=False, stream=sys.stderr):
        self.quiet, self.stream, self.total, self.done = quiet, stream, total, 0
        self.bar = None
        if not quiet:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="picture", file=stream, dynamic_ncols=True, mininterval=0.5,
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

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _load_contents(entries, progress):
    """Each entry's content image, read once per file; an unreadable file is named on stderr and its
    entries dropped.  Returns ``(entries kept with their images, number of files that failed)``."""
    from . import image as im

    images, failed = {}, 0
    for e in entries:
        if e["content"] not in images:
            try:
                images[e["content"]] = im.load_image(e["content"])
            except NSTError as err:
                progress.error(str(err))
                images[e["content"]] = None
                failed += 1
    return [(e, images[e["content"]]) for e in entries if images[e["content"]] is not None], failed


def _plan_outputs(args, sweep: dict) -> tuple[Path, list[dict]]:
    """The output folder and one entry per picture: ``content``, ``output``, and the swept values."""
    import itertools

    from . import image as im

    files = _content_files(args.content)
    out = _output_folder(args.output)
    stems = [f.stem for f in files]
    if len(set(stems)) != len(stems):
        dup = sorted({s for s in stems if stems.count(s) > 1})
        raise NSTError(f"two content files are named {dup[0]}.*: their pictures would have the same name")
    out.mkdir(exist_ok=True)
    entries = []
    for f in files:
        for combo in itertools.product(*sweep.values()):
            values = dict(zip(sweep, combo, strict=True))
            tag = "".join(f"_{k.replace('_', '-')}-{_value_text(v)}" for k, v in values.items())
            entries.append({"content": str(f), "output": str(im.check_output(out / f"{f.stem}{tag}.png")),
                            **values})
    return out, entries


def _finish_many(args, out, written, failed, total, grid_values, report_extra, progress, t0) -> int:
    """Contact sheet, report and summary line of a folder or sweep; exit status 1 when any picture failed."""
    progress.close()
    if grid_values and written:
        _contact_sheet(out / "grid.png", written, grid_values)
    if args.report:
        _write_json_atomic(args.report, {**report_extra, "outputs": written})
    if not args.quiet:
        print(f"saved {len(written)} of {total} pictures in {out} ({time.perf_counter() - t0:.1f}s)"
              + (f"; {failed} failed" if failed else ""), file=sys.stderr)
    return 1 if failed else 0


def _contact_sheet(path: Path, written: list[dict], swept: tuple) -> None:
    """``grid.png``: one row per content, one column per swept value, each picture labelled with its value
    (as Gatys et al. 2016, Fig. 3, show a weight sweep)."""
    from . import image as im

    rows: dict[str, list] = {}
    for w in written:
        text = ", ".join(f"{k.replace('_', ' ')} {_value_text(w[k])}" for k in swept)
        rows.setdefault(w["content"], []).append((im.load_image(w["output"]), text))
    im.save_image(path, im.contact_sheet(list(rows.values())))


def _many_inputs(args, sweep: dict):
    """What a folder or sweep command checks and reads before any work: ``--tile``, the report's folder, the
    outputs (:func:`_plan_outputs`; with ``--skip-existing`` those that exist left out), the style images and
    the contents (a file that cannot be read is named).  Returns ``(out, total, loaded, failed, styles,
    progress)``."""
    from . import image as im
    from .tiling import parse_tile

    parse_tile(args.tile)
    if args.report and not Path(args.report).expanduser().parent.is_dir():
        raise NSTError(f"report folder {Path(args.report).expanduser().parent} does not exist")
    styles = [im.load_image(s) for s in args.styles]  # before the output folder is made
    out, entries = _plan_outputs(args, sweep)
    total = len(entries)
    if args.skip_existing:
        entries = [e for e in entries if not Path(e["output"]).exists()]
    progress = PictureProgress(len(entries), args.quiet)
    loaded, failed = _load_contents(entries, progress)
    progress.drop(len(entries) - len(loaded))
    if not args.no_compile_cache:
        from .compile_cache import enable_compilation_cache

        enable_compilation_cache()
    return out, total, loaded, failed, styles, progress


def _interrupted_many(progress, written, out) -> int:
    progress.close()
    print(f"nst-jax: interrupted; {len(written)} finished pictures kept in {out} (continue with "
          "--skip-existing)", file=sys.stderr)
    return 130


def _cmd_stylize_many(args, sweep: dict) -> int:
    """``nst-jax stylize`` with a folder of contents and/or swept values: every picture its own problem,
    batches of them in one compiled program (gatys.stylize_many)."""
    from . import gatys
    from . import image as im
    from .runinfo import DeferredInterrupt, run_metadata

    t0 = time.perf_counter()
    if args.save_every:
        raise NSTError("--save-every follows one picture; not with a folder of contents or a sweep")
    if "seed" in sweep and args.init != "noise":
        raise NSTError("several --seed values need --init noise (the seed only draws the starting noise)")
    init = args.init if args.init in ("content", "noise", "style") else im.load_image(args.init)
    fixed = {k: getattr(args, k) for k in SWEEPS if k not in sweep}
    conf = gatys.StylizeConfig(**{name: getattr(args, name) for name in defaults(gatys.StylizeConfig)
                                  if name not in ("init",) + SWEEPS}, init=init, **fixed)
    out, total, loaded, failed, styles, progress = _many_inputs(args, sweep)
    interrupt = DeferredInterrupt()

    def callback(it):
        interrupt.check()
        progress(it)

    pictures = [gatys.Picture(image, styles, {k: e[k] for k in sweep}) for e, image in loaded]
    written = []
    try:
        with interrupt:
            for r in gatys.stylize_many(pictures, conf, batch=args.batch, weights=args.weights,
                                        callback=callback):
                entry = loaded[r.index][0]
                if r.error is not None:
                    progress.error(f"{entry['content']}: {r.error}")
                    failed += 1
                    continue
                if is_main_process():
                    im.save_image(entry["output"], r.image)
                written.append({**entry, "loss": r.report["loss"], "terms": r.report["terms"],
                                "seconds": r.report["seconds"], "timings": r.report["timings"],
                                "evaluations": r.report["evaluations"], "batch": r.report["batch"]})
                progress.finished()
    except gatys.StylizeInterrupted:
        return _interrupted_many(progress, written, out)
    if not is_main_process():
        return 0
    extra = {"method": "gatys", "styles": [str(s) for s in args.styles], "swept": list(sweep),
             **run_metadata(),
             "options": {**{k: v for k, v in as_dict(conf).items() if k != "init"}, "weights": args.weights},
             "init": args.init}
    return _finish_many(args, out, written, failed, total, tuple(sweep), extra, progress, t0)


def _cmd_adain_many(args, decoder) -> int:
    """``nst-jax adain`` with a folder of contents: same-shaped ones in batches (adain.stylize_many)."""
    from . import adain
    from . import image as im
    from .runinfo import run_metadata

    t0 = time.perf_counter()
    mask = im.load_image(args.mask).mean(axis=-1) if args.mask else None
    conf = adain.StylizeConfig(**{name: getattr(args, name) for name in defaults(adain.StylizeConfig)})
    out, total, loaded, failed, styles, progress = _many_inputs(args, {})
    written, last = [], {}
    try:
        if loaded:
            results = adain.stylize_many([img for _, img in loaded], styles, conf, mask=mask, decoder=decoder,
                                         weights=args.weights, batch=args.batch)
            for i, image, report in results:
                entry = loaded[i][0]
                if image is None:
                    progress.error(f"{entry['content']}: {report}")
                    failed += 1
                    continue
                if is_main_process():
                    im.save_image(entry["output"], image)
                written.append({**entry, "seconds": report["seconds"], "batch": report["batch"]})
                last = report
                progress.finished()
    except KeyboardInterrupt:
        return _interrupted_many(progress, written, out)
    if not is_main_process():
        return 0
    extra = {"method": "adain", "styles": [str(s) for s in args.styles], "mask_file": args.mask,
             "decoder": args.decoder or "shipped", **run_metadata(),
             **{k: last.get(k) for k in ("alpha", "style_blend", "preserve_color", "batches")}}
    return _finish_many(args, out, written, failed, total, (), extra, progress, t0)


class TrainProgress:
    """One line per logged step on stderr: step, losses, throughput, ETA."""

    def __init__(self, quiet=False, stream=sys.stderr):
        self.quiet, self.stream = quiet, stream
        self._first = None

    def __call__(self, p):
        if self.quiet:
            return
        now = time.perf_counter()
        if self._first is None:
            self._first = (now, p.step)
        t0, s0 = self._first
        eta = (now - t0) / (p.step - s0) * (p.steps - p.step) if p.step > s0 else None
        m = p.metrics
        terms = ", ".join(f"{k} {m[k]:.4g}" for k in ("content", "style", "tv") if k in m)
        self.stream.write(f"step {p.step}/{p.steps}  loss {m['loss']:.4g}" + (f" ({terms})" if terms else "")
                          + (f"  {p.images_per_second:.2f} img/s" if p.images_per_second is not None else "")
                          + (f"  ETA {_hms(eta)}" if eta else "")
                          + (f"  skipped {m['skipped']}" if m.get("skipped") else "") + "\n")
        self.stream.flush()


def _hms(seconds):
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else \
        f"{seconds // 60}m{seconds % 60:02d}s"


def _content_source(args) -> str:
    if (args.content_dir is None) == (args.tfds is None):
        raise NSTError("give exactly one content source: --content-dir DIR or --tfds NAME[:SPLIT]")
    return args.content_dir if args.tfds is None else f"tfds:{args.tfds}"


def _run_training(args, fn, *positional, **options) -> int:
    """Call a training function with the options every ``train`` command shares; report the outcome."""
    from .compile_cache import enable_compilation_cache

    enable_compilation_cache()
    from .train import TrainConfig

    # every TrainConfig field that is an option, by name (``keep`` is not one)
    given = vars(args)
    config = TrainConfig(**{name: given[name] for name in defaults(TrainConfig) if name in given})
    common = dict(config=config, exclude=tuple(args.exclude),
                  crop=args.crop, resize=args.resize, resume=args.resume, init_from=args.init_from,
                  weights=args.weights,
                  tfds_data_dir=args.tfds_data_dir, cache_images=args.cache_images,
                  distributed=args.distributed)
    try:
        summary = fn(*positional, **common, **options, callback=TrainProgress(args.quiet),
                     log=progress_message(args))
    except KeyboardInterrupt as e:
        step = e.args[0]["step"] if e.args and isinstance(e.args[0], dict) else "?"
        print(f"nst-jax: interrupted; checkpoint saved at step {step} in {args.ckpt_dir} "
              "(continue with --resume)", file=sys.stderr)
        return 130
    if not args.quiet:
        print(f"trained to step {summary['step']} in {_hms(summary['wall_seconds'])}; model: "
              f"{summary['model']}", file=sys.stderr)
    return 0


def _cmd_train_adain(args):
    from .adain_train import train_decoder

    if args.style_dir is None and args.objective == "adain":
        raise NSTError("train adain needs --style-dir (or --objective reconstruction)")
    return _run_training(args, train_decoder, _content_source(args), args.style_dir, args.ckpt_dir,
                         style_weight=args.style_weight, content_weight=args.content_weight,
                         objective=args.objective, dtype=args.dtype)


def _cmd_train_fast(args):
    from .feedforward_train import train_fast

    style = args.style[0] if len(args.style) == 1 else args.style
    return _run_training(args, train_fast, style, _content_source(args), args.ckpt_dir,
                         content_weight=args.content_weight, style_weight=args.style_weight,
                         tv_weight=args.tv_weight, content_layers=args.content_layers,
                         style_norm=args.style_norm, style_size=args.style_size)


def progress_message(args):
    return None if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))


def _cmd_adain(args):
    from . import adain
    from . import image as im
    from .compile_cache import enable_compilation_cache

    decoder, _ = adain.load_decoder(args.decoder)  # every input is checked before any work or output
    if Path(args.content).expanduser().is_dir():
        return _cmd_adain_many(args, decoder)
    out, content, styles = _image_inputs(args)
    mask = None
    if args.mask:
        mask = im.load_image(args.mask).mean(axis=-1)
    if not args.no_compile_cache:
        enable_compilation_cache()
    progress = ProgressBar(args.quiet)
    conf = adain.StylizeConfig(**{name: getattr(args, name) for name in defaults(adain.StylizeConfig)})
    result, report = adain.stylize(content, styles, conf, mask=mask, decoder=decoder, weights=args.weights,
                                   callback=progress)
    if not is_main_process():
        return 0
    im.save_image(out, result)
    if args.report:
        from .runinfo import run_metadata

        report.update(content=str(args.content), styles=[str(s) for s in args.styles], output=str(out),
                      mask_file=args.mask, decoder=args.decoder or "shipped", **run_metadata())
        _write_json_atomic(args.report, report)
    progress.message(f"saved {out} ({report['width']}x{report['height']}, {report['seconds']:.1f}s)")
    return 0


def _cmd_fast(args):
    from PIL import Image

    from . import feedforward
    from . import image as im
    from .compile_cache import enable_compilation_cache
    from .feedforward import load_model, model_styles, shipped_styles

    if args.list:
        styles = shipped_styles()
        if not styles:
            print("no feed-forward models are shipped in this version; train one with "
                  "`nst-jax train fast` and pass --model PATH", file=sys.stderr)
        for name, (path, inside) in styles.items():
            meta = load_model(path)[1]
            steps = meta.get("cumulative", {}).get("steps", meta.get("step", "?"))  # all runs that made it
            kind = f"\tone of {len(model_styles(meta))} styles of one network" if inside else ""
            print(f"{name}\t{steps} steps\t{path}{kind}")
        return 0
    if not args.contents:
        raise NSTError("give one or more content images (or --list)")
    if args.output is None:
        raise NSTError("give -o OUT (a file for one image, a folder for several)")
    conf = feedforward.StylizeConfig(**{name: getattr(args, name)
                                        for name in defaults(feedforward.StylizeConfig)})
    params, meta = load_model(args.model)  # every input is checked before any work or output
    style = _style_spec(args.style) if args.style else None
    feedforward.choose_style(params, meta, style)  # before any work
    out = Path(args.output).expanduser()
    many = len(args.contents) > 1
    if many:
        if out.exists() and not out.is_dir():
            raise NSTError(f"{out} is a file: with several content images, -o must be a folder")
        if not out.exists() and out.suffix.lower() in Image.registered_extensions():
            raise NSTError(f"{out} names an image file: with several content images, -o must be a folder")
        out.mkdir(parents=True, exist_ok=True)
        targets = [im.check_output(out / f"{Path(c).stem}_{Path(str(args.model)).stem}.png")
                   for c in args.contents]
        if len(set(targets)) != len(targets):
            raise NSTError("two content images have the same file name; stylise them in separate calls")
    else:
        targets = [im.check_output(out)]
    contents = [im.load_image(c) for c in args.contents]
    if not args.no_compile_cache:
        enable_compilation_cache()
    progress = ProgressBar(args.quiet)
    results, report = feedforward.stylize(contents, (params, meta), conf, style=style, batch=args.batch,
                                          callback=progress)
    if not is_main_process():
        return 0
    for path, img in zip(targets, results, strict=True):
        im.save_image(path, img)
        progress.message(f"saved {path}")
    progress.message(f"{len(results)} image(s) in {report['batches']} batch(es), {report['seconds']:.1f}s")
    return 0


def _style_spec(items) -> dict:
    """``["a", "b=0.3"]`` -> ``{"a": 1.0, "b": 0.3}`` (a name alone weighs 1)."""
    spec: dict = {}
    for item in items:
        name, _, weight = item.partition("=")
        try:
            spec[name] = spec.get(name, 0.0) + (float(weight) if weight else 1.0)
        except ValueError:
            raise NSTError(f"--style takes NAME or NAME=WEIGHT, not {item!r}") from None
    return spec


def _alpha(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"alpha must be in [0, 1], got {v}")
    return v


PRESERVE_COLOR_HELP = ("luminance: keep the photo's colours; histogram: recolour the styles to the photo's "
                       "first (default: neither)" + _NO_DEFAULT)


def _size_or_none(text):
    """A longest side in px, or ``none`` (also ``original``): the image's own size."""
    if text.lower() in ("none", "original"):
        return None
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a size in px or 'none', got {text!r}") from None


def _image_arguments(p):
    p.add_argument("content", help="content image, or a folder: every image in it (sorted)")
    p.add_argument("styles", nargs="+", metavar="STYLE", help="one or more style images")
    p.add_argument("-o", "--output", required=True,
                   help="output image (.png, .jpg, ...); with a folder or a sweep, a folder (one CONTENT.png "
                        "each)")


def _many_arguments(p):
    p.add_argument("--batch", type=_positive_int, default=None,
                   help="pictures run at once, one compiled program (default: on a GPU/TPU as many as fit "
                        "in memory, on a CPU one at a time)" + _NO_DEFAULT)
    p.add_argument("--skip-existing", action="store_true",
                   help="with a folder or a sweep: leave out pictures whose output exists (resume a run)")


def _run_arguments(p, report=True):
    if report:
        p.add_argument("--report", help="write a JSON report here")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--no-compile-cache", action="store_true",
                   help="do not use the persistent XLA compilation cache")
    _distributed_arguments(p)


def _distributed_arguments(p, training=False):
    g = p.add_argument_group("several processes (hosts), one program (jax.distributed)")
    spans = ("every batch is split across every host's devices" if training
             else "--devices all then spans every host's devices")
    g.add_argument("--distributed", action="store_true",
                   help="join the other processes of a multi-host run first (jax.distributed.initialize); "
                        "on a Cloud TPU slice, SLURM or Open MPI they are found from the environment. Start "
                        f"the same command in every process; {spans}, and process 0 writes the files")
    g.add_argument("--coordinator", metavar="HOST:PORT", help="elsewhere: process 0's address")
    g.add_argument("--num-processes", type=_positive_int, metavar="N", help="elsewhere: how many processes")
    g.add_argument("--process-id", type=int, metavar="I", help="elsewhere: this process's number, 0..N-1")


def _size_arguments(p, d):
    """``--devices`` and ``--tile`` of the feed-forward commands (nst_jax.tiling), defaults from ``d``."""
    p.add_argument("--devices", default=d["devices"],
                   help="N or all: split the picture by rows across N devices (default: one device)"
                        + _NO_DEFAULT)
    p.add_argument("--tile", default=d["tile"],
                   help="auto: a band of rows at a time when the whole picture would not fit in memory (the "
                        "same result); none; or a band height in px")


def _training_arguments(p, d, model_file, init_help, init_many=False):
    """The options every ``train`` command shares, with the training function's defaults ``d``
    (``init_many``: ``--init-from`` takes several networks)."""
    p.add_argument("--content-dir", help="folder of content photos (searched recursively)")
    p.add_argument("--tfds", help="content from a TFDS dataset instead, NAME[:SPLIT], e.g. coco/2017:train")
    p.add_argument("--tfds-data-dir", default=d["tfds_data_dir"], help="TFDS data_dir")
    p.add_argument("--exclude", action="append", default=list(d["exclude"]), metavar="GLOB",
                   help="leave out of the image folders the files whose names match (repeatable): images "
                        "held back for evaluation")
    p.add_argument("--ckpt-dir", required=True,
                   help=f"checkpoints, metrics.jsonl, loss_curve.png, {model_file}")
    p.add_argument("--steps", type=_positive_int, default=d["steps"], help="total steps")
    p.add_argument("--batch-size", type=_positive_int, default=d["batch_size"], help="global batch")
    p.add_argument("--learning-rate", "--lr", type=float, default=d["learning_rate"],
                   help="Adam's learning rate")
    p.add_argument("--lr-decay", type=float, default=d["lr_decay"], help="lr / (1 + decay * step)")
    p.add_argument("--warmup", type=int, default=d["warmup"],
                   help="linear learning-rate warm-up steps (useful with --init-from)")
    p.add_argument("--clip-grad-norm", type=float, default=d["clip_grad_norm"], metavar="NORM",
                   help="clip each gradient to this global norm before Adam (0: off); metrics.jsonl logs "
                        "each step's grad_norm to choose it. Resume with the same value")
    p.add_argument("--crop", type=_positive_int, default=d["crop"], help="random crop side")
    p.add_argument("--resize", type=_positive_int, default=d["resize"], help="shorter side before cropping")
    p.add_argument("--seed", type=int, default=d["seed"])
    p.add_argument("--ckpt-every", type=_positive_int, default=d["ckpt_every"])
    p.add_argument("--log-every", type=_positive_int, default=d["log_every"])
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    p.add_argument("--init-from", default=d["init_from"], metavar="MODEL", nargs="+" if init_many else None,
                   help=f"start from this trained network ({init_help}; a fresh optimiser), so that training "
                        "accumulates across runs")
    p.add_argument("--weights", default=d["weights"], help="VGG-19 weights file")
    p.add_argument("--cache-images", action="store_true",
                   help="keep the resized content photos in memory after their first read (same batches; "
                        "for a GPU that trains faster than one thread decodes them)")
    _distributed_arguments(p, training=True)
    p.add_argument("--quiet", action="store_true")


def build_parser():
    from . import adain, feedforward, gatys
    from .adain_train import train_decoder
    from .solvers import SOLVERS, adam, lbfgs, lbfgsb
    from .style import STYLE_LOSSES

    d = {**_defaults(gatys.stylize), **defaults(gatys.StylizeConfig)}
    p = _Parser(prog="nst-jax", description="Neural style transfer in JAX.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    w = sub.add_parser("weights", help="fetch or convert VGG-19 weights")
    wsub = w.add_subparsers(dest="weights_command", required=True, parser_class=_Parser)
    f = wsub.add_parser("fetch", help="fetch, verify and cache the ImageNet VGG-19 weights; "
                                      "prints the cached path")
    f.add_argument("--force", action="store_true", help="fetch again even if cached")
    f.set_defaults(func=_cmd_weights_fetch)
    c = wsub.add_parser("convert", help="port a Keras .h5 / torchvision .pth / .npz to our .npz")
    c.add_argument("src")
    c.add_argument("dst")
    c.set_defaults(func=_cmd_weights_convert)

    s = sub.add_parser("stylize", help="Gatys et al.: optimise an image's pixels",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _image_arguments(s)
    s.add_argument("--size", type=_positive_int, default=d["size"], help="longest side in px")
    s.add_argument("--iters", type=_positive_int, default=d["iters"], help="iterations per scale")
    s.add_argument("--optimizer", choices=tuple(SOLVERS), default=d["optimizer"],
                   help="lbfgs: L-BFGS as neural-style runs it; adam; lbfgsb: jaxopt's L-BFGS-B, pixels "
                        "boxed to [0, 1] (default: the style loss's, adam for swd, else lbfgs)" + _NO_DEFAULT)
    s.add_argument("--learning-rate", type=float, default=d["learning_rate"],
                   help=f"Adam only (default: {_defaults(adam)['learning_rate']})" + _NO_DEFAULT)
    s.add_argument("--init", default=d["init"], help="content | noise | style | PATH")
    sweep = " (comma-separated values: a sweep, one picture each)"
    for name in ("content", "style", "tv"):
        s.add_argument(f"--{name}-weight", type=_sweep_values(float), default=d[f"{name}_weight"],
                       help=sweep[2:-1])
    s.add_argument("--pool", choices=("max", "avg"), default=d["pool"], help="VGG-19's pooling")
    s.add_argument("--content-layers", type=_names, default=d["content_layers"],
                   help="comma-separated VGG-19 layer names")
    s.add_argument("--style-layers", type=_names, default=d["style_layers"],
                   help="comma-separated VGG-19 layer names")
    s.add_argument("--style-layer-weights", type=_floats, default=d["style_layer_weights"],
                   help="comma-separated, one per style layer (default: equal)")
    s.add_argument("--style-loss", choices=tuple(STYLE_LOSSES), default=d["style_loss"],
                   help="the style representation: gram (Gatys et al.), moments (channel means and standard "
                        "deviations), mmd-poly / mmd-rbf (Li et al. 2017's kernels), swd (sliced "
                        "Wasserstein, Heitz et al. 2021)")
    s.add_argument("--style-blend", type=_floats, default=d["style_blend"],
                   help="comma-separated, one per style image (default: equal)" + _NO_DEFAULT)
    s.add_argument("--style-scale", type=float, default=d["style_scale"],
                   help="style images' longest side, as a multiple of each scale's --size")
    s.add_argument("--preserve-color", choices=("luminance", "histogram"), default=d["preserve_color"],
                   help=PRESERVE_COLOR_HELP)
    s.add_argument("--scales", type=_positive_int, default=d["scales"],
                   help="coarse-to-fine: number of sizes, halving down from --size")
    s.add_argument("--seed", type=_sweep_values(int), default=d["seed"], help="for --init noise" + sweep)
    _many_arguments(s)
    s.add_argument("--save-every", type=_positive_int, default=d["save_every"],
                   help="also save OUT_<iteration> every K iterations")
    s.add_argument("--history", type=_positive_int, default=d["history"],
                   help=f"L-BFGS memory: pairs kept, each 24 bytes per pixel (default: "
                        f"{_defaults(lbfgs)['history']}; lbfgsb: {_defaults(lbfgsb)['history']})"
                        + _NO_DEFAULT)
    s.add_argument("--history-dtype", choices=("float32", "bfloat16"), default=d["history_dtype"],
                   help="how L-BFGS stores its pairs: bfloat16 halves their memory (12 instead of 24 bytes "
                        "per pixel a pair; products still in float32) (default: float32)" + _NO_DEFAULT)
    s.add_argument("--devices", default=d["devices"],
                   help="N or all: split the image (and the L-BFGS history) by rows across N devices; the "
                        "same result, about 1/N of the memory on each (default: one device)" + _NO_DEFAULT)
    s.add_argument("--tile", default=d["tile"],
                   help="auto: evaluate the objective a band of rows at a time when the whole image would "
                        "not fit in memory (the same loss and gradient); none; or a band height in px")
    s.add_argument("--remat", action="store_true",
                   help="recompute VGG activations in the backward pass (jax.checkpoint)")
    s.add_argument("--weights", default=d["weights"],
                   help="VGG-19 weights file (.h5, .npz, .pth); default: fetched ImageNet weights")
    _run_arguments(s)
    s.set_defaults(func=_cmd_stylize)

    d = {**_defaults(adain.stylize), **defaults(adain.StylizeConfig)}
    a = sub.add_parser("adain", help="AdaIN (Huang & Belongie 2017): any style in one forward pass",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _image_arguments(a)
    a.add_argument("--alpha", type=_alpha, default=d["alpha"],
                   help="content-style trade-off: 0 = content, 1 = full style")
    a.add_argument("--style-blend", type=_floats, default=d["style_blend"],
                   help="comma-separated interpolation weights, one per style (default: equal)" + _NO_DEFAULT)
    a.add_argument("--mask", help="grey mask image: the first style inside (white), the second outside")
    a.add_argument("--preserve-color", choices=("luminance", "histogram"), default=d["preserve_color"],
                   help=PRESERVE_COLOR_HELP)
    a.add_argument("--size", type=_size_or_none, default=d["size"],
                   help="content (and output) longest side in px; 'none' keeps the original")
    a.add_argument("--style-size", type=_size_or_none, default=d["style_size"],
                   help="style images' longest side in px; 'none' keeps the original")
    a.add_argument("--decoder", default=d["decoder"], help="decoder .npz (default: the shipped one)")
    a.add_argument("--dtype", choices=("float32", "bfloat16"), default=d["dtype"],
                   help="bfloat16: mixed precision for GPU/TPU; slower on a CPU")
    _many_arguments(a)
    _size_arguments(a, d)
    a.add_argument("--weights", default=d["weights"], help="VGG-19 weights file")
    _run_arguments(a)
    a.set_defaults(func=_cmd_adain)

    from .feedforward_train import train_fast

    d = {**_defaults(feedforward.stylize), **defaults(feedforward.StylizeConfig)}
    ff = sub.add_parser("fast", help="Johnson et al.: a trained per-style network, one forward pass",
                        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ff.add_argument("contents", nargs="*", metavar="CONTENT", help="one or more content images")
    ff.add_argument("-o", "--output", help="output image (one content) or folder (several)")
    ff.add_argument("--model", default=d["model"],
                    help="a shipped model's or style's name (see --list) or a .npz")
    ff.add_argument("--style", nargs="+", metavar="NAME[=WEIGHT]",
                    help="with a network of several styles: which one, or a blend of some (weights "
                         "normalised to sum 1), e.g. --style the_scream=0.7 shipwreck=0.3")
    ff.add_argument("--size", type=_size_or_none, default=d["size"],
                    help="longest side in px; 'none' keeps the original")
    ff.add_argument("--preserve-color", choices=("luminance", "histogram"), default=d["preserve_color"],
                    help=PRESERVE_COLOR_HELP)
    _size_arguments(ff, d)
    ff.add_argument("--batch", type=_positive_int, default=None,
                    help="images run at once (default: on a GPU/TPU as many as fit in memory, on a CPU one)"
                    + _NO_DEFAULT)
    ff.add_argument("--list", action="store_true", help="list the shipped models")
    _run_arguments(ff, report=False)
    ff.set_defaults(func=_cmd_fast)

    from . import cli_video

    cli_video.add_parser(sub, sys.modules[__name__])

    t = sub.add_parser("train", help="train a feed-forward network (AdaIN decoder, per-style network)")
    tsub = t.add_subparsers(dest="train_command", required=True, parser_class=_Parser)
    d = _training_defaults(train_decoder)
    a = tsub.add_parser("adain", help="train an AdaIN decoder (Huang & Belongie 2017)",
                        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    a.add_argument("--style-dir", help="folder of style images (searched recursively); not used by "
                                        "--objective reconstruction")
    _training_arguments(a, d, "decoder.npz", "a decoder .npz, or 'shipped'")
    a.add_argument("--style-weight", type=float, default=d["style_weight"])
    a.add_argument("--content-weight", type=float, default=d["content_weight"])
    a.add_argument("--objective", choices=("adain", "reconstruction"), default=d["objective"],
                   help="the paper's loss, or a cheaper warm-up: reconstruct photos from their own features")
    a.add_argument("--dtype", choices=("float32", "bfloat16"), default=d["dtype"],
                   help="bfloat16: mixed precision for GPU/TPU (activations and convolutions; float32 "
                        "weights, loss and optimiser state); slower on a CPU")
    a.set_defaults(func=_cmd_train_adain)

    d = _training_defaults(train_fast)
    f = tsub.add_parser("fast", help="train a per-style feed-forward network (Johnson et al. 2016)",
                        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    f.add_argument("--style", required=True, nargs="+", metavar="IMAGE",
                   help="the style image; several: one conditional network for all of them (Dumoulin et al. "
                        "2017)")
    _training_arguments(f, d, "model.npz", "a shipped model's name or a model .npz; for several styles also "
                                           "one one-style network per style, in --style's order",
                        init_many=True)
    f.add_argument("--content-weight", type=float, default=d["content_weight"])
    f.add_argument("--style-weight", type=float, default=d["style_weight"])
    f.add_argument("--tv-weight", type=float, default=d["tv_weight"])
    f.add_argument("--style-norm", choices=("none", "photos"), default=d["style_norm"],
                   help="'photos': divide the style term by the training photos' own style distance to the "
                        "painting, so one --style-weight (about 21) suits near and far paintings alike")
    f.add_argument("--content-layers", nargs="+", default=list(d["content_layers"]), metavar="LAYER",
                   help="VGG-19 layers of the content term")
    f.add_argument("--style-size", type=_size_or_none, default=d["style_size"],
                   help="style image's longest side in px")
    f.set_defaults(func=_cmd_train_fast)
    return p


# what lowers the peak (--remat does not, for this objective: BENCHMARKS.md "Time and memory against size")
OOM_HINT = ("out of memory; try --tile (a band of rows at a time), --history-dtype bfloat16 (stylize), "
            "--batch 1, or a smaller --size")


def _is_oom(e: BaseException) -> bool:
    text = str(e)
    return "RESOURCE_EXHAUSTED" in text or "Out of memory" in text or "out of memory" in text


def _start_distributed(args):
    given = [getattr(args, k, None) is not None for k in ("coordinator", "num_processes", "process_id")]
    if not getattr(args, "distributed", False):
        if any(given):
            raise NSTError("--coordinator, --num-processes and --process-id go with --distributed")
        return
    from .tiling import initialize_distributed

    initialize_distributed(args.coordinator, args.num_processes, args.process_id)
    if not is_main_process():
        args.quiet = True  # one progress report: process 0's


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _start_distributed(args)
        rc = args.func(args)
    except NSTError as e:
        print(f"nst-jax: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("nst-jax: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print(f"nst-jax: error: {OOM_HINT}", file=sys.stderr)
        return 1
    except Exception as e:  # XLA's runtime errors carry no stable type across jax versions
        if _is_oom(e):
            print(f"nst-jax: error: {OOM_HINT}", file=sys.stderr)
            return 1
        raise
    return rc or 0


if __name__ == "__main__":
    sys.exit(main())
