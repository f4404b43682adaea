"""Pictures per second against batch size, in one process (the compiled programs warm: each batch size runs
once untimed first): Gatys (L-BFGS, ``--iters`` iterations), AdaIN and the fast network, each picture of a
batch a different photo (photos-extra, never trained on), Starry Night as the style.

    python experiments/batch_throughput.py --gatys-size 256 --iters 40 --net-size 512 --batches 1 2 4 8
"""

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from nst_jax import adain, feedforward, gatys
from nst_jax import image as im
from nst_jax.runinfo import machine

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared"
PHOTOS = sorted((SHARED / "datasets" / "photos-extra").glob("kodak24-*.jpg"))  # 500 x 500 each


def timed(fn):
    fn()  # compiles (or loads) the programs for this batch size
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gatys-size", type=int, default=256)
    ap.add_argument("--iters", type=int, default=40)
    ap.add_argument("--net-size", type=int, default=512)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--out", default=str(HERE / "results" / "many" / "batch_throughput.json"))
    a = ap.parse_args()
    style = im.load_image(SHARED / "images" / "starry_night.jpg")
    photos = [im.load_image(p) for p in PHOTOS[: max(a.batches)]]
    rows = []
    for n in a.batches:
        pics = [gatys.Picture(p, style) for p in photos[:n]]
        dt = timed(lambda: list(gatys.stylize_many(pics, size=a.gatys_size, iters=a.iters, batch=n)))
        rows.append({"method": "gatys", "size": a.gatys_size, "iters": a.iters, "batch": n, "seconds": dt})
        dt = timed(lambda: adain.stylize(photos[:n], style, size=a.net_size, style_size=a.net_size, batch=n))
        rows.append({"method": "adain", "size": a.net_size, "batch": n, "seconds": dt})
        dt = timed(lambda: feedforward.stylize(photos[:n], "starry_night", size=a.net_size, batch=n))
        rows.append({"method": "fast", "size": a.net_size, "batch": n, "seconds": dt})
        for r in rows[-3:]:
            r["pictures_per_second"] = n / r["seconds"]
            print(f"{r['method']:6s} batch {n}: {r['seconds']:.2f} s, {r['pictures_per_second']:.3f} "
                  "pictures/s", flush=True)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump({"machine": machine(), "rows": rows}, f, indent=2)
    print("wrote", a.out)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
