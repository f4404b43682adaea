"""The steps every picture command (``stylize``, ``adain``, ``fast``) shares, around the method's run
(:mod:`nst_jax.run`): read and check the inputs, name the outputs, run, save each picture as it finishes,
report, and stop cleanly on Ctrl-C.

One picture (one content file, no sweep): ``-o`` names the output file (or a folder to put ``CONTENT.png``
in).  Several (a folder of contents, several content files or a sweep of values): ``-o`` names a folder and
each picture is ``CONTENT[_option-value...].png`` in it; a file that cannot be read is named on stderr and
the others are still done.  Nothing a user owns is overwritten: an output that names an input is refused,
two pictures never share one file, and ``--skip-existing`` leaves finished pictures as they are."""

from __future__ import annotations

import dataclasses
import itertools
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

from PIL import Image

from .. import image as im
from ..errors import NSTError
from ..run import Interrupted, Result
from ..runinfo import DeferredInterrupt, run_metadata
from ..tiling import is_main_process
from .common import PictureProgress, ProgressBar, write_json


@dataclasses.dataclass
class Entry:
    """One picture to make: its content file, its output and its swept values."""

    content: str
    output: Path
    values: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Inputs:
    """What a picture command read and planned before any work."""

    single: bool
    out: Path  # the output file (one picture) or folder
    total: int  # pictures asked for
    todo: list  # (Entry, content image) to run
    skipped: list  # Entry whose output exists (--skip-existing)
    failed: list  # {"content": file, "error": text, "pictures": n} of contents that could not be read
    styles: list
    made_folder: bool = False  # the output folder was made by this command (removed again if left empty)

    @property
    def failed_pictures(self) -> int:
        return sum(f["pictures"] for f in self.failed)


def value_text(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _same_file(a: Path, b: Path) -> bool:
    return a.expanduser().resolve() == Path(b).expanduser().resolve()


def _refuse_inputs(outputs, inputs) -> None:
    """An output that names an input would replace it: one line."""
    for o in outputs:
        for i in inputs:
            if i is not None and _same_file(o, Path(i)):
                raise NSTError(f"the output {o} is the input {i}: choose another -o")


def content_files(paths) -> list[Path]:
    """Each path a content image, or a folder: every image file in it (sorted by name)."""
    files = []
    for path in paths:
        p = Path(path).expanduser()
        if p.is_dir():
            found = im.image_files(p)
            if not found:
                raise NSTError(f"{p} holds no image files")
            files += found
        else:
            files.append(p)
    return files


def _single_output(output, content: Path) -> Path:
    out = Path(output).expanduser()
    if out.is_dir() or str(output).endswith(("/", "\\")):  # a folder to put CONTENT.png in
        if not out.is_dir():
            raise NSTError(f"output folder {out} does not exist")
        out = out / f"{content.stem}.png"
    return im.check_output(out)


def _output_folder(output) -> Path:
    out = Path(output).expanduser()
    if out.exists() and not out.is_dir():
        raise NSTError(f"{out} is a file: with several pictures (a folder, several contents or a sweep) -o "
                       "must be a folder")
    if not out.exists() and out.suffix.lower() in Image.registered_extensions():
        raise NSTError(f"{out} names an image file: with several pictures (a folder, several contents or a "
                       "sweep) -o must be a folder")
    if not out.parent.is_dir():
        raise NSTError(f"folder {out.parent} does not exist")
    return out


def gather(args, contents: list, sweep: dict, inputs=(), skip_existing: bool = False) -> Inputs:
    """Check and read everything a picture command needs before any work: the report's folder, the outputs
    (one file, or one per content and swept value in a folder), the style images (``args.styles``, if any),
    then the contents (a file that cannot be read is named; with several, the others still run).
    ``inputs``: other files the command reads (a mask, an init image), which no output may replace."""
    if getattr(args, "report", None):
        rp = Path(args.report).expanduser()
        if not rp.parent.is_dir():
            raise NSTError(f"report folder {rp.parent} does not exist")
    files = content_files(contents)
    style_paths = list(getattr(args, "styles", None) or [])
    single = not sweep and len(files) == 1 and not Path(contents[0]).expanduser().is_dir()
    if single:
        out = _single_output(args.output, files[0])
        entries = [Entry(str(files[0]), out)]
    else:
        out = _output_folder(args.output)
        stems = [f.stem for f in files]
        if len(set(stems)) != len(stems):
            dup = sorted({s for s in stems if stems.count(s) > 1})
            raise NSTError(f"two content files are named {dup[0]}.*: their pictures would have the same name")
        entries = []
        for f in files:
            for combo in itertools.product(*sweep.values()):
                values = dict(zip(sweep, combo, strict=True))
                tag = "".join(f"_{k.replace('_', '-')}-{value_text(v)}" for k, v in values.items())
                entries.append(Entry(str(f), out / f"{f.stem}{tag}.png", values))
        if len({e.output for e in entries}) != len(entries):
            raise NSTError("two pictures would be written to one file: give distinct values")
    _refuse_inputs([e.output for e in entries], [*files, *style_paths, *inputs])
    styles = [im.load_image(s) for s in style_paths]  # before the output folder is made
    made_folder = not single and not out.exists()
    if not single:
        out.mkdir(exist_ok=True)
        for e in entries:
            im.check_output(e.output)
    skipped = [e for e in entries if skip_existing and e.output.exists()]
    todo, failed, images = [], [], {}
    for e in entries:
        if e in skipped:
            continue
        if e.content not in images:
            try:
                images[e.content] = im.load_image(e.content)
            except NSTError as err:
                if single:
                    raise
                images[e.content] = None
                failed.append({"content": e.content, "error": str(err), "pictures": 0})
        if images[e.content] is None:
            next(f for f in failed if f["content"] == e.content)["pictures"] += 1
        else:
            todo.append((e, images[e.content]))
    return Inputs(single, out, len(entries), todo, skipped, failed, styles, made_folder)


def enable_cache(args) -> None:
    if not getattr(args, "no_compile_cache", False):
        from ..compile_cache import enable_compilation_cache

        enable_compilation_cache()


def intermediate_path(out: Path, iteration: int, scale: int, scales: int) -> Path:
    tag = f"_s{scale}" if scales > 1 else ""
    return out.with_name(f"{out.stem}{tag}_{iteration:05d}{out.suffix}")


Runner = Callable[[list, Callable], Iterator[Result]]


def execute(args, inputs: Inputs, run: Runner, extra: dict, grid: tuple = ()) -> int:
    """Run ``run(images, callback)`` (a method's ``stylize_many`` over the contents to do), save each picture
    as it finishes, then the report and a summary line; ``extra``: what the report says of the run
    (method, options).  ``grid``: the swept options, for a contact sheet ``grid.png``.  Exit status 1 when a
    picture failed, 130 on Ctrl-C (finished pictures kept; with one picture, its current iterate saved)."""
    t0 = time.perf_counter()
    quiet = getattr(args, "quiet", False)
    progress = ProgressBar(quiet) if inputs.single else PictureProgress(len(inputs.todo), quiet)
    for f in inputs.failed:
        progress.error(f["error"])  # names the file
    interrupt = DeferredInterrupt()
    save_every = getattr(args, "save_every", None)

    def callback(it):
        interrupt.check()
        progress(it)
        if inputs.single and it.image is not None and save_every and is_main_process():
            im.save_image(intermediate_path(inputs.out, it.iteration, it.scale, it.scales), it.image)

    written, failed, report = [], list(inputs.failed), {}
    try:
        with interrupt:
            for r in run([image for _, image in inputs.todo], callback) if inputs.todo else ():
                entry = inputs.todo[r.index][0]
                if r.error is not None:
                    if inputs.single:
                        raise r.error
                    progress.error(f"{entry.content}: {r.error}")
                    failed.append({"content": entry.content, "error": str(r.error), "pictures": 1})
                    continue
                if is_main_process():
                    im.save_image(entry.output, r.image)
                report = r.report
                written.append(_record(entry, r.report))
                if not inputs.single:
                    progress.finished()
    except KeyboardInterrupt as e:
        return _interrupted(args, inputs, progress, written, e)
    except NSTError:  # a setting the method refused before any picture: one line, nothing half-written
        if not inputs.single:
            progress.close(leave=False)
        if inputs.made_folder and not any(inputs.out.iterdir()):
            inputs.out.rmdir()
        raise
    progress.close()
    if not is_main_process():
        return 0
    if inputs.single:
        return _finish_one(args, inputs, report, extra, progress)
    return _finish_many(args, inputs, written, failed, extra, grid, t0)


def _record(entry: Entry, report: dict) -> dict:
    keep = ("seconds", "timings", "batch", "loss", "terms", "evaluations", "height", "width")
    return {"content": entry.content, "output": str(entry.output), **entry.values,
            **{k: report[k] for k in keep if k in report}}


def _interrupted(args, inputs: Inputs, progress, written: list, e: KeyboardInterrupt) -> int:
    progress.close()
    if inputs.single and isinstance(e, Interrupted) and e.image is not None:
        if is_main_process():
            im.save_image(inputs.out, e.image)
        scales = getattr(args, "scales", 1)
        at = f" of scale {len(e.report['scales'])}/{scales}" if scales > 1 else ""
        print(f"nst-jax: interrupted; saved the current image (iteration {e.report['iterations']}/"
              f"{args.iters}{at}) to {inputs.out}", file=sys.stderr)
    elif inputs.single:
        print("nst-jax: interrupted; nothing written", file=sys.stderr)
    else:
        print(f"nst-jax: interrupted; {len(written)} finished pictures kept in {inputs.out} (continue with "
              "--skip-existing)", file=sys.stderr)
    return 130


def _finish_one(args, inputs: Inputs, report: dict, extra: dict, progress) -> int:
    if getattr(args, "report", None):
        report = {**report, "content": inputs.todo[0][0].content, "output": str(inputs.out), **extra,
                  **run_metadata()}
        write_json(args.report, report)
    detail = f", {report['evaluations']} evaluations" if "evaluations" in report else ""
    progress.message(f"saved {inputs.out} ({report['width']}x{report['height']}{detail}, "
                     f"{report['seconds']:.1f}s)")
    return 0


def _finish_many(args, inputs: Inputs, written: list, failed: list, extra: dict, grid: tuple, t0) -> int:
    out = inputs.out
    skipped = [{"content": e.content, "output": str(e.output), **e.values} for e in inputs.skipped]
    if grid and (written or skipped):
        _contact_sheet(out / "grid.png", written + skipped, grid)
    if getattr(args, "report", None):
        write_json(args.report, {**extra, **run_metadata(), "outputs": written, "skipped": skipped,
                                 "failed": failed})
    lost = sum(f["pictures"] for f in failed)
    if not getattr(args, "quiet", False):
        print(f"saved {len(written)} of {inputs.total} pictures in {out} ({time.perf_counter() - t0:.1f}s)"
              + (f"; {len(skipped)} skipped (their outputs exist)" if skipped else "")
              + (f"; {lost} failed" if lost else ""), file=sys.stderr)
    return 1 if lost else 0


def _contact_sheet(path: Path, pictures: list[dict], swept: tuple) -> None:
    """``grid.png``: one row per content, one column per swept value, each picture labelled with its value
    (as Gatys et al. 2016, Fig. 3, show a weight sweep); pictures made before (``--skip-existing``) too."""
    rows: dict[str, list] = {}
    for w in sorted(pictures, key=lambda w: (w["content"], [w[k] for k in swept])):
        text = ", ".join(f"{k.replace('_', ' ')} {value_text(w[k])}" for k in swept)
        rows.setdefault(w["content"], []).append((im.load_image(w["output"]), text))
    im.save_image(path, im.contact_sheet(list(rows.values())))
