"""Pictures per second against batch size, in one process (the compiled programs warm: each batch size runs
once untimed first): Gatys (L-BFGS, ``--iters`` iterations), AdaIN and the fast network, each picture of a
batch a different photo (photos-extra's Kodak photos, never trained on, or ``--photos DIR``), Starry Night
as the style.  ``--torch``: beside each Gatys row, the PyTorch reference (torch_reference: the same
objective, torch.optim.LBFGS without line search, as neural-style-pt) run on the same pictures one after
another, as a shell loop over neural-style-pt would.

    python experiments/batch_throughput.py --gatys-size 256 --iters 40 --net-size 512 --batches 1 2 4 8
    python experiments/batch_throughput.py --iters 10 --batches 1 4 16 --pictures 16  # 16 pictures each time
    python experiments/batch_throughput.py --gatys-size 512 --iters 300 --batches 1 4 8 16 --torch  # a GPU
    python experiments/batch_throughput.py --smoke  # 32 px, 2 iterations, --torch, a temporary folder, one
                                                    # batch of 1 (not several sizes), tubingen.jpg (the
                                                    # benchmarks' photo, not photos-extra's; or --photos)
"""

import argparse
import json
import os
import time
from pathlib import Path

import harness
import numpy as np

from nst_jax import adain, feedforward, gatys
from nst_jax import image as im
from nst_jax.runinfo import machine

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared"
KODAK = SHARED / "datasets" / "photos-extra"  # kodak24-*.jpg: 500 x 500 each
STYLE = Path(os.environ.get("NST_SHARED_IMAGES") or SHARED / "images") / "starry_night.jpg"


def timed(fn):
    fn()  # compiles (or loads) the programs for this batch size
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def torch_loop(contents, style, size: int, iters: int) -> float:
    """Seconds for the PyTorch reference to stylise ``contents`` one after another (a warm-up run first):
    bench_gatys's neural-style-pt setting, each picture ``size`` px on its longer side, as in stylize."""
    import torch_reference as tr
    from bench_gatys import torch_run
    from harness import sync_all

    from nst_jax import weights as W

    vgg = tr.CaffeVGG19(os.environ.get("NST_JAX_WEIGHTS") or W.cached_h5()).to(tr.DEVICE)
    s = im.resize_longest(style, size)

    def one(photo):
        return torch_run(vgg, im.resize_longest(photo, size), s, iters)[0]

    sync_all(one(contents[0]))
    t = time.perf_counter()
    for photo in contents:
        y = one(photo)
    sync_all(y)
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gatys-size", type=int, default=256)
    ap.add_argument("--iters", type=int, default=40)
    ap.add_argument("--net-size", type=int, default=512)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--pictures", type=int, help="pictures per row, run in batches of each size (default: "
                    "one batch of that size)")
    ap.add_argument("--photos", type=Path, help="a folder of photos (default: photos-extra's Kodak photos)")
    ap.add_argument("--torch", action="store_true", help="also the PyTorch reference, one picture at a time")
    ap.add_argument("--out", help="default: results/many/batch_throughput.json (results/gpu/ on a GPU)")
    harness.add_smoke(ap)
    a = ap.parse_args()
    if a.smoke:
        harness.smoke_results()
        a.gatys_size, a.iters, a.net_size, a.batches, a.pictures, a.torch = 32, 2, 32, [1], None, True
        a.out = None
    name = "batch_throughput" + (f"_{a.pictures}_pictures" if a.pictures else "")
    out = a.out or harness.result_path("many", f"{name}{harness.backend_tag()}.json")
    style = im.load_image(STYLE)
    if a.photos and not a.photos.is_dir():
        raise SystemExit(f"--photos {a.photos}: not a folder")
    files = im.image_files(a.photos) if a.photos else sorted(KODAK.glob("kodak24-*.jpg"))
    if a.smoke and not a.photos:  # the benchmarks' photo: the programs the other smoke runs compile too
        files = [STYLE.with_name("tubingen.jpg")]
    if a.pictures is not None and a.pictures < 1:
        raise SystemExit(f"--pictures must be at least 1, not {a.pictures}")
    most = a.pictures or max(a.batches)
    if len(files) < most:
        raise SystemExit(f"{len(files)} photos, fewer than the pictures a row needs ({most})")
    photos = [im.load_image(p) for p in files[:most]]
    rows = []
    for n in a.batches:
        some = photos[:a.pictures or n]
        pics = [gatys.Picture(p, style) for p in some]
        dt = timed(lambda: list(gatys.stylize_many(pics, size=a.gatys_size, iters=a.iters, batch=n)))
        rows.append({"method": "gatys", "size": a.gatys_size, "iters": a.iters, "batch": n, "seconds": dt})
        if a.torch:
            rows[-1]["pytorch_loop_seconds"] = torch_loop(some, style, a.gatys_size, a.iters)
            rows[-1]["pytorch_loop_over_batch"] = rows[-1]["pytorch_loop_seconds"] / dt
        dt = timed(lambda: adain.stylize(some, style, size=a.net_size, style_size=a.net_size, batch=n))
        rows.append({"method": "adain", "size": a.net_size, "batch": n, "seconds": dt})
        dt = timed(lambda: feedforward.stylize(some, "starry_night", size=a.net_size, batch=n))
        rows.append({"method": "fast", "size": a.net_size, "batch": n, "seconds": dt})
        for r in rows[-3:]:
            r["pictures"] = len(some)
            r["pictures_per_second"] = len(some) / r["seconds"]
            loop = r.get("pytorch_loop_seconds")
            torch_s = f", PyTorch loop {loop:.2f} s" if loop else ""
            print(f"{r['method']:6s} batch {n}: {r['seconds']:.2f} s, {r['pictures_per_second']:.3f} "
                  f"pictures/s{torch_s}", flush=True)
    with open(out, "w") as f:
        json.dump({"machine": machine(), "rows": rows}, f, indent=2)
    print("wrote", out)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
