"""The Gatys command as the user runs it: the whole command, process start to written image.

    nst-jax stylize tubingen.jpg starry_night.jpg -o out.png --size 256 --iters 50
against
    python experiments/torch_stylize.py tubingen.jpg starry_night.jpg -o out.png --size 256 --iters 50

Each is a fresh process (imports, weights, image loading, targets, optimisation, PNG).  nst-jax gets an
XLA cache of its own, empty at first: its first run compiles (what a new user, or a new size, meets) and
fills it; the timed "warm" runs load the compiled programs from it, which is what a user's second run
does.  Runs alternate.  Both written PNGs are then scored by the same PyTorch evaluator
(experiments/torch_reference.py) against the same resized content and style.

    python experiments/bench_cli.py                 # 256 px, 50 iterations, 5 rounds
    python experiments/bench_cli.py --size 512 --iters 20 --repeats 3
    python experiments/bench_cli.py --dtype bfloat16 --tag _intel   # mixed precision, a file of its own
    python experiments/bench_cli.py --smoke         # 32 px, 2 iterations, each command once (its first run
                                                    # stands for the warm ones), a temporary folder
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

import harness  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch_reference as tr  # noqa: E402
from PIL import Image  # noqa: E402
from torch_stylize import load  # noqa: E402

from nst_jax import weights as W  # noqa: E402


def timed(cmd, env=None):
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    dt = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"{cmd[0]} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return dt


def score(vgg, content, style, png):
    c, s = tr.nchw(content[None]), tr.nchw(style[None])
    with Image.open(png) as im:
        x = tr.nchw((np.asarray(im.convert("RGB"), np.float32) / 255.0)[None])
    obj = tr.GatysObjective(vgg, c, s)
    with torch.no_grad():
        terms = {k: float(v) for k, v in obj.terms(x).items()}
    terms["total"] = sum(terms.values())
    return terms


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                    help="nst-jax's --dtype (bfloat16: mixed precision); PyTorch runs float32")
    ap.add_argument("--tag", default="", help="suffix for the result file (e.g. the CPU)")
    harness.add_smoke(ap)
    a = ap.parse_args()
    if a.smoke:
        harness.smoke_results()
        a.size, a.iters, a.repeats = 32, 2, 0  # no warm rounds: the first runs stand for them
    W.fetch()
    h5 = str(W.cached_h5())
    content = os.path.join(harness.IMAGES, "tubingen.jpg")
    style = os.path.join(harness.IMAGES, "starry_night.jpg")
    nst = os.path.join(os.path.dirname(sys.executable), "nst-jax")
    with tempfile.TemporaryDirectory(prefix="bench_cli_") as tmp:
        run(a, h5, content, style, nst, tmp)


def run(a, h5, content, style, nst, tmp):
    out = {"jax": os.path.join(tmp, "jax.png"), "torch": os.path.join(tmp, "torch.png")}
    report = os.path.join(tmp, "report.json")
    common = [content, style, "--size", str(a.size), "--iters", str(a.iters)]
    cmds = {"jax": [nst, "stylize", *common, "-o", out["jax"], "--quiet", "--report", report,
                    "--dtype", a.dtype],
            "torch": [sys.executable, os.path.join(HERE, "torch_stylize.py"), *common, "-o", out["torch"],
                      "--h5", h5]}
    print(f"machine: {harness.machine()}; {harness.versions()}")
    env = {**os.environ, "NST_JAX_XLA_CACHE": os.path.join(tmp, "xla")}  # empty: a true first run
    first = {n: timed(c, env) for n, c in cmds.items()}
    with open(report) as f:
        rep_first = json.load(f)
    runs = {n: [] for n in cmds}
    for _ in range(a.repeats):
        for n, c in cmds.items():
            runs[n].append(timed(c, env))
    if not a.repeats:  # (--smoke) each command ran once: its first run stands for the warm ones
        runs = {n: [t] for n, t in first.items()}
    with open(report) as f:
        rep = json.load(f)
    med = {n: statistics.median(r) for n, r in runs.items()}
    vgg = tr.CaffeVGG19(h5)
    q = {n: score(vgg, load(content, a.size), load(style, a.size), p) for n, p in out.items()}
    print(f"\n`nst-jax stylize --dtype {a.dtype}` vs `torch_stylize.py`, {a.size} px, {a.iters} iterations, "
          f"{a.repeats} alternated rounds, fresh process each")
    print(harness.row(["", "nst-jax stylize", "PyTorch (torch_stylize.py)"]))
    print(harness.row(["---"] * 3))
    print(harness.row(["first run"] + [f"{first[n]:.1f} s" for n in cmds]))
    print(harness.row(["warm, whole command"] + [f"{med[n]:.1f} s ({min(runs[n]):.1f}–{max(runs[n]):.1f})"
                                                 for n in cmds]))
    print(harness.row(["PyTorch / JAX (medians)", "", f"**{med['torch'] / med['jax']:.2f}×**"]))
    for name, r, wall in (("first", rep_first, first["jax"]), ("last", rep, runs["jax"][-1])):
        t = r.get("timings", {})
        print(harness.row([f"{name} run: report's total / targets and setup / compile or cache load / "
                           "optimisation", f"{r['seconds']:.1f} s / {t.get('targets_and_setup', 0):.1f} s / "
                           f"{r['compile_seconds']:.1f} s / {r['optimize_seconds']:.1f} s "
                           f"(wall {wall:.1f} s)", ""]))
    for term in ("total", "content", "style", "tv"):
        print(harness.row([f"{term} loss of the written PNG"] + [f"{q[n][term]:.4g}" for n in cmds]))
    dtype = "" if a.dtype == "float32" else f"_{a.dtype}"
    harness.save(harness.result_path("gatys", f"bench_cli_{a.size}_{a.iters}{dtype}{a.tag}.json"),
                 {"first": first, "runs": runs, "median": med, "quality": q, "report": rep,
                  "report_first": rep_first,
                  "commands": {n: " ".join(c) for n, c in cmds.items()}})


if __name__ == "__main__":
    main()
