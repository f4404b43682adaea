"""Spatial control (Gatys et al. 2017; nst_jax.regions) on held-back photos: each photo split into two halves
by a mask, a held-back painting for each half, at 256 px after 100 iterations (L-BFGS, Gram), with each way
of bringing the mask to the layers (``--mask-mode`` simple / inside / all) and a hard and a soft border.

Measured on each result:

* the Gram yardstick (:func:`nst_jax.metrics.style_distance`) of each half against each painting: a half
  must be closer to its own painting than to the other one (``margin``: the other's distance over its own's);
  the halves are taken 1/16 of the width (16 px at 256) away from the border;
* the seam: the mean horizontal luminance step in the 4 columns at the border over the mean elsewhere, the
  same for the photo (a hard edge the stylisation drew shows as a ratio well above the photo's);
* the cost against one style: seconds per iteration (one process, alternated), and peak memory (a fresh
  process per configuration, 2 iterations at 512 px).

A grid (photo | mask | one picture per mode and border) and the numbers go to results/spatial/.

    python experiments/spatial_control.py
    python experiments/spatial_control.py --smoke   # 64 px, 2 iterations, one pair, the simple mode (hard and
                                                    # soft), no memory processes, a temporary folder
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import harness
import numpy as np

from nst_jax import gatys, metrics
from nst_jax import image as im
from nst_jax.vgg import vgg19_params, with_winograd

# held-back photo, the painting for its left half, the one for its right half
PAIRS = (("golden_gate", "starry_night", "the_scream"), ("tubingen", "the_scream", "shipwreck"),
         ("hoovertowernight", "shipwreck", "woman-with-hat-matisse"))
MODES = ("simple", "inside", "all")
MARGIN = 1 / 16  # between the border and the half that is measured, as a fraction of the width (16 px at 256)
SOFT = 1 / 8  # the soft border's ramp, as a fraction of the width

CHILD = r"""
import json, resource, sys
import numpy as np
from nst_jax import gatys
size, regions = int(sys.argv[1]), sys.argv[2] == "1"
rng = np.random.default_rng(0)
content = rng.uniform(size=(size, size, 3)).astype(np.float32)
a, b = (rng.uniform(size=(size, size, 3)).astype(np.float32) for _ in range(2))
mask = np.zeros((size, size), np.float32)
mask[:, : size // 2] = 1.0
styles, extra = ([a, b], {"masks": mask}) if regions else (a, {})
gatys.stylize(content, styles, size=None, iters=2, **extra)
print(json.dumps({"peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
"""


def load(name):
    return im.load_image(os.path.join(harness.IMAGES, f"{name}.jpg"))


def halves_mask(shape, soft: bool) -> np.ndarray:
    h, w = shape
    m = np.zeros((h, w), np.float32)
    m[:, : w // 2] = 1.0
    if soft:
        half = max(1, int(round(w * SOFT / 2)))
        m[:, w // 2 - half: w // 2 + half] = np.linspace(1.0, 0.0, 2 * half)
    return m


def seam_ratio(x) -> float:
    """The mean horizontal luminance step at the 4 border columns over the mean step elsewhere."""
    lum = np.asarray(x, np.float64) @ np.array([0.299, 0.587, 0.114])
    step = np.abs(np.diff(lum, axis=1)).mean(axis=0)
    c, margin = lum.shape[1] // 2 - 1, int(round(lum.shape[1] * MARGIN))
    at = step[c - 2: c + 2].mean()
    away = np.concatenate([step[: c - margin], step[c + margin:]]).mean()
    return float(at / away)


def measure(params, x, photo, left, right) -> dict:
    w = x.shape[1]
    margin = int(round(w * MARGIN))
    lx, rx = x[:, : w // 2 - margin], x[:, w // 2 + margin:]
    d = {"left_own": metrics.style_distance(params, lx, left),
         "left_other": metrics.style_distance(params, lx, right),
         "right_own": metrics.style_distance(params, rx, right),
         "right_other": metrics.style_distance(params, rx, left)}
    d["left_margin"] = d["left_other"] / d["left_own"]
    d["right_margin"] = d["right_other"] / d["right_own"]
    d["seam_ratio"] = seam_ratio(x)
    d["photo_seam_ratio"] = seam_ratio(photo)
    d["content_distance"] = metrics.content_distance(params, x, photo)
    return d


def peak_memory(size: int, regions: bool) -> float:
    r = subprocess.run([sys.executable, "-c", CHILD, str(size), "1" if regions else "0"], capture_output=True,
                       text=True, timeout=1800)
    if r.returncode:
        raise RuntimeError(r.stderr[-2000:])
    return json.loads(r.stdout.strip().splitlines()[-1])["peak_gb"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--iters", type=int, default=100)
    ap.add_argument("--pairs", type=int, default=len(PAIRS))
    ap.add_argument("--memory-size", type=int, default=512)
    ap.add_argument("--part", choices=("all", "pictures", "cost"), default="all",
                    help="the pictures and their measures, the cost against one style, or both")
    harness.add_smoke(ap)
    a = ap.parse_args()
    modes = MODES
    if a.smoke:
        harness.smoke_results()
        a.size, a.iters, a.pairs, modes = 64, 2, 1, ("simple",)
    params = with_winograd(vgg19_params())
    record = {"machine": harness.machine(), "size": a.size, "iters": a.iters, "margin_fraction": MARGIN,
              "soft_fraction": SOFT, "pairs": []}
    rows = []
    for photo_name, left_name, right_name in PAIRS[: a.pairs] if a.part != "cost" else ():
        photo = im.resize_longest(load(photo_name), a.size)
        left, right = (im.resize_longest(load(n), a.size) for n in (left_name, right_name))
        entry = {"photo": photo_name, "left": left_name, "right": right_name, "runs": {},
                 "photo_measures": measure(params, photo, photo, left, right)}
        row = [(photo, photo_name), (np.repeat(halves_mask(photo.shape[:2], True)[..., None], 3, -1),
                                     f"{left_name} | {right_name}")]
        for soft in (False, True):
            for mode in modes:
                mask = halves_mask(photo.shape[:2], soft)
                t0 = time.perf_counter()
                x, rep = gatys.stylize(photo, [left, right], size=a.size, iters=a.iters, masks=mask,
                                       mask_mode=mode, weights=params)
                name = f"{mode} {'soft' if soft else 'hard'}"
                m = measure(params, x, photo, left, right)
                m.update(seconds=time.perf_counter() - t0, loss=rep["loss"],
                         seconds_per_iteration=rep["optimize_seconds"] / rep["iterations"])
                entry["runs"][name] = m
                row.append((x, name))
                border = "soft" if soft else "hard"
                im.save_image(harness.result_path("spatial", f"{photo_name}_{mode}_{border}_{a.size}.png"), x)
                print(photo_name, name, {k: round(v, 3) for k, v in m.items()}, flush=True)
        record["pairs"].append(entry)
        rows.append(row)
    if a.part != "pictures":
        cost(a, params, record)
    harness.save(harness.result_path("spatial", f"spatial_control_{a.part}_{a.size}_{a.iters}.json"), record)
    if rows:
        grid = im.contact_sheet([[(img, label) for img, label in r] for r in rows], thumb=a.size)
        im.save_image(harness.result_path("spatial", f"grid_{a.size}_{a.iters}.jpg"), grid)


def cost(a, params, record) -> None:
    """Seconds per iteration against one style, alternated in this process at the run's size; peak memory
    in fresh processes."""
    photo_name, left_name, right_name = PAIRS[0]
    photo = im.resize_longest(load(photo_name), a.size)
    left, right = (im.resize_longest(load(n), a.size) for n in (left_name, right_name))
    mask = halves_mask(photo.shape[:2], True)
    cost = {"one style": [], "two regions": []}
    for _ in range(1 if a.smoke else 2):
        for key, styles, extra in (("one style", left, {}), ("two regions", [left, right], {"masks": mask})):
            _, rep = gatys.stylize(photo, styles, size=a.size, iters=a.iters, weights=params, **extra)
            cost[key].append(rep["optimize_seconds"] / rep["iterations"])
    record["seconds_per_iteration"] = {k: statistics.median(v) for k, v in cost.items()}
    if not a.smoke:
        record["peak_memory_gb"] = {f"{a.memory_size} px, {k}": peak_memory(a.memory_size, k == "two regions")
                                    for k in ("one style", "two regions")}
    print("seconds per iteration", record["seconds_per_iteration"], record.get("peak_memory_gb"), flush=True)


if __name__ == "__main__":
    main()
