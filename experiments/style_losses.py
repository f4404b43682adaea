"""Style representations side by side: gram, moments, mmd-poly, mmd-rbf, swd, histogram and remd
(nst_jax.style) on held-back photo x painting pairs, each optimised with L-BFGS and with Adam, plus texture
synthesis (noise start, no content term).

* ``--calibrate``: each representation's style term at the photo, against gram's, on the pairs: the ratio
  (median) is the weight that makes the default style weight stylise about as strongly as gram
  (:data:`nst_jax.style.StyleLoss.weight`).
* otherwise: for each representation and solver, the picture, seconds per iteration, and a matrix of
  measures: every representation's distance of the result to the painting relative to the photo's (the
  sampling ones with a fixed key, averaged over 4 keys), the independent sliced Wasserstein distance of
  :func:`nst_jax.metrics.feature_swd_ratio`, and the Gram / content yardstick.  A grid of the pictures and
  the texture row go to ``--out``.

* ``--commands``: ``nst-jax stylize PHOTO PAINTING --size 192 --iters 60 --style-loss NAME`` as a user runs
  it (each with its default solver), scored by :func:`nst_jax.metrics.feature_swd_ratio`; and a style loss
  written in ten lines (the channel means) through ``nst_jax.stylize``: how far the picture's VGG channel
  means moved from the photo's toward the painting's.

    python experiments/style_losses.py --calibrate
    python experiments/style_losses.py --size 192 --iters 60
    python experiments/style_losses.py --commands
    python experiments/style_losses.py --smoke   # --calibrate, then the default mode, at 32 px, 2 iterations,
                                                 # one pair of two photos (one shape: the texture row reuses
                                                 # the programs), gram only, L-BFGS, the Gram yardstick at
                                                 # 32 px (not 512), a temporary folder; not --commands (a
                                                 # command and a style loss of its own: programs of their
                                                 # own; --smoke --commands runs it instead of the default
                                                 # mode), the other representations or Adam
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import harness
import jax
import jax.numpy as jnp
import numpy as np

from nst_jax import gatys, metrics, style
from nst_jax import image as im
from nst_jax.vgg import vgg19_params, with_winograd

PAIRS = (("golden_gate", "starry_night"), ("tubingen", "the_scream"), ("hoovertowernight", "shipwreck"))
NAMES = tuple(style.STYLE_LOSSES)
YARDSTICK_SIZE = 512  # the painting's size for the Gram yardstick (metrics.style_distance)


def load(name):
    return im.load_image(Path(harness.IMAGES) / f"{name}.jpg")


_targets = jax.jit(gatys.compute_targets, static_argnums=(3, 4))  # a static blend: samples mix by counts
_loss = jax.jit(gatys.gatys_loss, static_argnums=(4,))


def style_terms(params, content, painting, size):
    """Each representation's unweighted style term (its weight divided out) of ``content`` (a photo or a
    result) against the painting, both at ``size``; the sampling ones averaged over 4 keys."""
    c = jnp.asarray(im.resize_longest(content, size))[None]
    s = jnp.asarray(im.resize_longest(painting, size))[None]
    out = {}
    for name in NAMES:
        rep = style.STYLE_LOSSES[name]
        cfg = gatys.Config(gatys.Objective(style_loss=rep))
        t = _targets(params, c, [s], (1.0,), cfg)
        w = gatys.LossWeights(0.0, 1.0, 0.0).as_arrays(5)
        vals = [float(_loss(params, c, t, w, cfg, jnp.int32(key))[1]["style"]) / rep.weight
                for key in range(4)]
        out[name] = statistics.fmean(vals)
    return out


def distances(params, x, content, painting):
    """Each representation's distance (unweighted style term) of ``x`` to the painting, relative to the
    photo's."""
    s = style_terms(params, x, painting, max(x.shape[:2]))
    p = style_terms(params, content, painting, max(x.shape[:2]))
    return {k: s[k] / p[k] for k in NAMES}


def commands(params, size: int, iters: int, out: Path):
    """The command line as a user runs it, then a user-written StyleLoss through the API."""
    import subprocess
    import sys

    from nst_jax.vgg import vgg19_features

    photo, painting = PAIRS[0]
    p, s = Path(harness.IMAGES) / f"{photo}.jpg", Path(harness.IMAGES) / f"{painting}.jpg"
    small, art = im.resize_longest(load(photo), size), im.resize_longest(load(painting), size)
    record = {}
    for name in NAMES:
        dst = out / f"cli_{name}.png"
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "nst_jax", "stylize", str(p), str(s), "-o", str(dst), "--size",
                        str(size), "--iters", str(iters), "--style-loss", name, "--quiet"], check=True)
        ratio = metrics.feature_swd_ratio(params, im.load_image(dst), small, art)
        record[name] = {"seconds": time.perf_counter() - t0, "feature_swd_ratio": ratio}
        print(name, {k: round(v, 3) for k, v in record[name].items()}, flush=True)
    means = style.StyleLoss(target=lambda f: f.mean(axis=(1, 2)),
                            distance=lambda f, t, key: ((f.mean(axis=(1, 2)) - t) ** 2).mean())
    x, _ = gatys.stylize(load(photo), load(painting), style_loss=means, size=size, iters=iters,
                         style_weight=1000.0, content_weight=1.0, weights=params)

    def channel_means(img):
        f = vgg19_features(params, jnp.asarray(im.resize_longest(img, size))[None], gatys.STYLE_LAYERS)
        return np.concatenate([np.asarray(f[k].mean(axis=(1, 2)))[0] for k in gatys.STYLE_LAYERS])

    a, b, c = channel_means(small), channel_means(art), channel_means(x)
    record["custom_means_moved"] = float(np.dot(c - a, b - a) / np.dot(b - a, b - a))
    record["custom_means_rel_error"] = float(np.linalg.norm(c - b) / np.linalg.norm(a - b))
    print("custom StyleLoss (channel means): moved", round(record["custom_means_moved"], 3),
          "of the way; remaining distance", round(record["custom_means_rel_error"], 3), flush=True)
    harness.save(harness.result_path("style", f"commands_{size}_{iters}.json"), record)


def main():
    global YARDSTICK_SIZE
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calibrate", action="store_true")
    ap.add_argument("--commands", action="store_true")
    ap.add_argument("--size", type=int, default=192)
    ap.add_argument("--iters", type=int, default=60)
    ap.add_argument("--texture-iters", type=int, default=100)
    ap.add_argument("--pairs", type=int, default=1, help="how many of the held-back pairs")
    ap.add_argument("--solvers", nargs="+", default=["lbfgs", "adam"],
                    help="lbfgs, adam, or default: each representation's own")
    ap.add_argument("--names", nargs="+", choices=tuple(style.STYLE_LOSSES), default=None,
                    help="the representations to optimise (default: all; the distance columns cover all)")
    ap.add_argument("--out", default="/tmp/style_losses")
    harness.add_smoke(ap)
    a = ap.parse_args()
    if a.smoke:
        global NAMES, PAIRS
        NAMES = ("gram",)  # one representation (each is a compiled program of its own): Gatys's
        # one pair of two pictures of one shape at 32 px (two photos): the texture row (the painting as the
        # content) and every measure run the programs of the stylisation, not programs of their own
        PAIRS = (("tubingen", "golden_gate"),)
        a.out = harness.smoke_results()
        a.size, a.iters, a.texture_iters, a.pairs, a.solvers, a.names = 32, 2, 2, 1, ["lbfgs"], None
        YARDSTICK_SIZE = a.size  # the painting of the Gram yardstick at the run's size: no 512 px program
    params = with_winograd(vgg19_params())
    if a.calibrate or a.smoke:
        rows = []
        for photo, painting in PAIRS[:1] if a.smoke else PAIRS:
            t = style_terms(params, load(photo), load(painting), a.size)
            rows.append({k: t["gram"] / t[k] for k in NAMES})
            print(photo, painting, {k: f"{v:.4g}" for k, v in t.items()}, flush=True)
        print("weight for equal style terms at the photo (median of the pairs):",
              {k: f"{statistics.median(r[k] for r in rows):.4g}" for k in NAMES})
        if not a.smoke:
            return
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = tuple(a.names or NAMES)
    if a.commands:
        commands(params, a.size, a.iters, out)
        return
    record = {"machine": harness.machine(), "size": a.size, "iters": a.iters, "pairs": [], "texture": {}}
    grid_rows = []
    for photo, painting in PAIRS[:a.pairs]:
        content, art = load(photo), load(painting)
        small = im.resize_longest(content, a.size)
        art_small = im.resize_longest(art, a.size)
        row = [(small, photo), (art_small, painting)]
        entry = {"photo": photo, "painting": painting, "runs": {}}
        plan = [(name, style.STYLE_LOSSES[name].solver if solver == "default" else solver)
                for solver in a.solvers for name in runs]
        for name, solver in dict.fromkeys(plan):
            t0 = time.perf_counter()
            x, rep = gatys.stylize(content, art, size=a.size, iters=a.iters, style_loss=name,
                                   optimizer=solver, weights=params)
            wall = time.perf_counter() - t0
            m = {"seconds_per_iteration": rep["optimize_seconds"] / rep["iterations"],
                 "compile_seconds": rep["compile_seconds"], "wall_seconds": wall,
                 "feature_swd_ratio": metrics.feature_swd_ratio(params, x, small, art_small),
                 "gram_style_distance": metrics.style_distance(params, x,
                                                               im.resize_longest(art, YARDSTICK_SIZE)),
                 "content_distance": metrics.content_distance(params, x, small),
                 "edge_correlation": metrics.edge_correlation(x, small),
                 "distances": distances(params, x, small, art_small)}
            entry["runs"][f"{name} {solver}"] = m
            im.save_image(out / f"{photo}_{painting}_{name}_{solver}.png", x)
            if solver == style.STYLE_LOSSES[name].solver:  # the grid: each with its default solver
                row.append((x, f"{name} ({solver})"))
            shown = {k: round(v, 4) for k, v in m.items() if k != "distances"}
            print(photo, painting, name, solver, shown,
                  {k: round(v, 3) for k, v in m["distances"].items()}, flush=True)
        record["pairs"].append(entry)
        grid_rows.append(row)
    # texture synthesis: no content, white-noise start, the painting's statistics alone
    photo, painting = PAIRS[0]
    art = load(painting)
    art_small = im.resize_longest(art, a.size)
    row = [(np.zeros_like(art_small) + 1.0, "texture synthesis"), (art_small, painting)]
    for name in runs:
        x, rep = gatys.stylize(art, art, size=a.size, iters=a.texture_iters, style_loss=name, init="noise",
                               content_weight=0.0, weights=params)
        ratio = metrics.feature_swd(params, x, art_small)
        record["texture"][name] = {"feature_swd": ratio, "solver": rep["optimizer"],
                                   "seconds_per_iteration": rep["optimize_seconds"] / rep["iterations"]}
        im.save_image(out / f"texture_{painting}_{name}.png", x)
        row.append((x, f"{name} texture ({rep['optimizer']})"))
        print("texture", name, round(ratio, 4), flush=True)
    noise = np.random.default_rng(0).random(art_small.shape).astype(np.float32)
    record["texture"]["noise_start_feature_swd"] = metrics.feature_swd(params, noise, art_small)
    grid_rows.append(row)
    im.save_image(out / "grid.jpg", im.contact_sheet(grid_rows, thumb=a.size))
    tag = ("" if runs == NAMES else "_" + "-".join(runs)) + (f"_pairs{a.pairs}" if a.pairs > 1 else "") + (
        "" if a.solvers == ["lbfgs", "adam"] else "_" + "-".join(a.solvers))
    harness.save(harness.result_path("style", f"style_losses_{a.size}_{a.iters}{tag}.json"), record)
    print("grid:", out / "grid.jpg")


if __name__ == "__main__":
    main()
