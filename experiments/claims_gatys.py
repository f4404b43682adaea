"""Reproduce what the literature says about Gatys et al.'s method, with nst_jax.stylize.

Each claim writes a figure (matplotlib) to experiments/results/claims/ and its numbers to a JSON file
beside it; BENCHMARKS.md has a paragraph on each.  Content: tubingen.jpg, style: starry_night.jpg
(../shared/images).

* ``weights``: the content/style weight ratio in 10x steps (Gatys et al. 2016, Fig. 3): a smaller
  ratio gives a more stylised image that keeps less of the content.
* ``init``: starting from white noise vs from the content image (Gatys et al. 2016, Fig. 6): noise
  gives a different image per seed; the content start stays closer to the content.
* ``pooling``: max vs average pooling in VGG-19 (Gatys et al. 2016, Sec. 2: average pooling
  "improves the gradient flow and one obtains slightly more appealing results").
* ``solvers``: L-BFGS vs Adam: loss against function evaluations and against wall time.
* ``resolution``: the same style at 256 px and 512 px: the stroke scale, measured by the spectral
  centroid of the texture the stylisation adds, in cycles per pixel and per image width.

Distances reported for every result (the same yardstick for all, VGG-19 with max pooling):
content distance = ||F(x) - F(c)||^2 / ||F(c)||^2 at relu4_2; style distance = sum over
relu1_1..relu5_1 of ||G(x) - G(s)||^2 / ||G(s)||^2 (G: Gram matrix).

    python experiments/claims_gatys.py all                      # 256 px, 200 iterations (512 for resolution)
    python experiments/claims_gatys.py weights --iters 100
    python experiments/claims_gatys.py --smoke                  # all, 32 px, 2 iterations, temporary folder;
                                                                # one Gatys program: max pooling only and
                                                                # L-BFGS only (no average pooling, no Adam),
                                                                # two weight ratios (not five)
"""

import argparse
import json
import os
import time

HERE = os.path.dirname(os.path.abspath(__file__))

import harness  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib  # noqa: E402
import numpy as np  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from nst_jax import gatys, vgg19_features, vgg19_params  # noqa: E402
from nst_jax.losses import gram_matrix  # noqa: E402
from nst_jax.vgg import with_winograd  # noqa: E402

OUT = os.path.join(HERE, "results", "claims")
POOLS = ("max", "avg")  # for 'pooling'
# for 'weights': content / style; nst_jax's default is 5 / 100 = 0.05
RATIOS = (5.0, 0.5, 0.05, 0.005, 0.0005)
STYLE_LAYERS = gatys.STYLE_LAYERS
CONTENT_LAYER = "relu4_2"


class Yardstick:
    """Content and style distances of results, all measured with the same max-pooling VGG-19."""

    def __init__(self, params):
        layers = (CONTENT_LAYER,) + STYLE_LAYERS
        self.params = params
        self._f = jax.jit(lambda p, x: vgg19_features(p, x, layers))

    def __call__(self, x, content, style):
        fx, fc, fs = (self._f(self.params, jnp.asarray(a, jnp.float32)[None]) for a in (x, content, style))
        cd = float(jnp.sum((fx[CONTENT_LAYER] - fc[CONTENT_LAYER]) ** 2) / jnp.sum(fc[CONTENT_LAYER] ** 2))
        sd = 0.0
        for k in STYLE_LAYERS:
            gx, gs = gram_matrix(fx[k]), gram_matrix(fs[k])
            sd += float(jnp.sum((gx - gs) ** 2) / jnp.sum(gs ** 2))
        return {"content_distance": cd, "style_distance": sd}


def run(params, c, s, iters, **kw):
    """One stylisation; returns (image, report, curve) where curve rows are (iteration, seconds, loss)
    after every chunk of 10 iterations, seconds counted from the start of the optimisation."""
    curve = []

    def cb(it):
        curve.append((it.iteration, it.seconds, it.loss))

    t = time.perf_counter()
    x, rep = gatys.stylize(c, s, size=None, iters=iters, weights=params, callback=cb, **kw)
    setup = rep["seconds"] - rep["optimize_seconds"]
    curve = [(i, sec - setup, loss) for i, sec, loss in curve]
    rep["wall"] = time.perf_counter() - t
    return x, rep, curve


def show_row(axes, images, titles):
    for ax, img, t in zip(axes, images, titles, strict=True):
        ax.imshow(np.clip(img, 0, 1))
        ax.set_title(t, fontsize=8)
        ax.axis("off")


def save(fig, name, data):
    os.makedirs(OUT, exist_ok=True)
    fig.savefig(os.path.join(OUT, name + ".png"), dpi=110, bbox_inches="tight")
    plt.close(fig)
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump(data, f, indent=2, default=float)
    print(f"wrote {os.path.join(OUT, name)}.png/.json")


def claim_weights(params, yard, a):
    c, s = harness.load_pair(a.size)
    style_w = 100.0
    ratios = list(RATIOS)
    rows, images = [], []
    for r in ratios:
        x, rep, _ = run(params, c, s, a.iters, content_weight=r * style_w, style_weight=style_w)
        d = yard(x, c, s)
        rows.append({"ratio": r, **d, "loss": rep["loss"]})
        images.append(x)
        print(f"ratio {r:g}: content distance {d['content_distance']:.3f}, style distance "
              f"{d['style_distance']:.4f}", flush=True)
    fig = plt.figure(figsize=(3 * len(ratios), 6))
    axes = [fig.add_subplot(2, len(ratios), i + 1) for i in range(len(ratios))]
    show_row(axes, images, [f"content/style = {r:g}" for r in ratios])
    ax = fig.add_subplot(2, 1, 2)
    ax.loglog(ratios, [r["content_distance"] for r in rows], "o-", label="content distance (relu4_2)")
    ax.loglog(ratios, [r["style_distance"] for r in rows], "s-", label="style distance (Gram, 5 layers)")
    ax.set_xlabel("content weight / style weight")
    ax.set_ylabel("relative distance")
    ax.invert_xaxis()
    ax.legend()
    ax.set_title(f"{a.size} px, {a.iters} L-BFGS iterations each; right = more style")
    cd = [r["content_distance"] for r in rows]
    sd = [r["style_distance"] for r in rows]
    summary = {"content_distance_increases": bool(np.all(np.diff(cd) > 0)),
               "style_distance_decreases": bool(np.all(np.diff(sd) < 0))}
    print(summary)
    save(fig, "weights", {"size": a.size, "iters": a.iters, "rows": rows, **summary})


def claim_init(params, yard, a):
    c, s = harness.load_pair(a.size)
    runs = [("content", dict(init="content")), ("noise, seed 0", dict(init="noise", seed=0)),
            ("noise, seed 1", dict(init="noise", seed=1))]
    rows, images, curves = [], [], []
    for name, kw in runs:
        x, rep, curve = run(params, c, s, a.iters, **kw)
        d = yard(x, c, s)
        rows.append({"init": name, **d, "loss": rep["loss"], "terms": rep["terms"], "curve": curve})
        images.append(x)
        curves.append(curve)
        print(f"{name}: loss {rep['loss']:.4g}, {d}", flush=True)
    noise_diff = float(np.sqrt(np.mean((images[1] - images[2]) ** 2)))
    content_vs_noise = float(np.sqrt(np.mean((images[0] - images[1]) ** 2)))
    fig = plt.figure(figsize=(12, 6.5))
    show_row([fig.add_subplot(2, 3, i + 1) for i in range(3)], images, [n for n, _ in runs])
    ax = fig.add_subplot(2, 1, 2)
    for (name, _), curve in zip(runs, curves, strict=True):
        it, _, loss = zip(*curve, strict=True)
        ax.semilogy(it, loss, label=name)
    ax.set_xlabel("L-BFGS iteration")
    ax.set_ylabel("total loss")
    ax.legend()
    ax.set_title(f"RMS pixel difference: noise seed 0 vs seed 1 = {noise_diff:.3f}, "
                 f"content init vs noise = {content_vs_noise:.3f}")
    save(fig, "init", {"size": a.size, "iters": a.iters, "rows": rows, "rms_noise0_vs_noise1": noise_diff,
                       "rms_content_vs_noise0": content_vs_noise})


def claim_pooling(params, yard, a):
    c, s = harness.load_pair(a.size)
    rows, images, curves = [], [], []
    for pool in POOLS:
        x, rep, curve = run(params, c, s, a.iters, pool=pool)
        d = yard(x, c, s)
        l0 = curve[0][2]
        rows.append({"pool": pool, **d, "loss": rep["loss"], "loss_at_10": l0,
                     "loss_reduction": l0 / rep["loss"], "curve": curve})
        images.append(x)
        curves.append(curve)
        print(f"{pool}: loss {rep['loss']:.4g}, {d}", flush=True)
    fig = plt.figure(figsize=(10, 7))
    show_row([fig.add_subplot(2, 2, i + 1) for i in range(len(POOLS))], images,
             [f"{p} pooling" for p in POOLS])
    ax = fig.add_subplot(2, 1, 2)
    for pool, curve in zip(POOLS, curves, strict=True):
        it, _, loss = zip(*curve, strict=True)
        ax.semilogy(it, np.array(loss) / loss[0], label=f"{pool} pooling (own objective)")
    ax.set_xlabel("L-BFGS iteration")
    ax.set_ylabel("loss / loss after 10 iterations")
    ax.legend()
    save(fig, "pooling", {"size": a.size, "iters": a.iters, "rows": rows})


def claim_solvers(params, yard, a):
    c, s = harness.load_pair(a.size)
    runs = [("L-BFGS", dict(optimizer="lbfgs"))] + [
        (f"Adam, lr {lr:g}", dict(optimizer="adam", learning_rate=lr)) for lr in a.adam_lr]
    for _, kw in runs:  # compile every program first: the curves below are warm
        run(params, c, s, min(10, a.iters), **kw)  # (L-BFGS keeps at most one pair an iteration)
    rows, curves = [], []
    for name, kw in runs:
        x, rep, curve = run(params, c, s, a.iters, **kw)
        d = yard(x, c, s)
        rows.append({"solver": name, **d, "loss": rep["loss"], "evaluations": rep["evaluations"],
                     "optimize_seconds": rep["optimize_seconds"], "curve": curve})
        curves.append(curve)
        print(f"{name}: loss {rep['loss']:.4g} after {rep['evaluations']} evaluations, "
              f"{rep['optimize_seconds']:.1f} s", flush=True)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for (name, kw), curve in zip(runs, curves, strict=True):
        it, sec, loss = zip(*curve, strict=True)
        evals = np.array(it) + (1 if kw["optimizer"] == "lbfgs" else 0)
        a1.semilogy(evals, loss, label=name)
        a2.semilogy(sec, loss, label=name)
    a1.set_xlabel("function evaluations (value + gradient)")
    a2.set_xlabel(f"wall time, s (warm, {harness.machine()})")
    for ax in (a1, a2):
        ax.set_ylabel("total loss")
        ax.legend()
    fig.suptitle(f"{a.size} px, {a.iters} iterations")
    save(fig, "solvers", {"size": a.size, "iters": a.iters, "rows": rows})


def spectral_centroid(residual_gray):
    """Power-weighted mean radial frequency (cycles per pixel) of a zero-mean grey image."""
    h, w = residual_gray.shape
    win = np.outer(np.hanning(h), np.hanning(w))
    p = np.abs(np.fft.fft2((residual_gray - residual_gray.mean()) * win)) ** 2
    fy, fx = np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij")
    r = np.hypot(fy, fx)
    return float(np.sum(r * p) / np.sum(p))


def claim_resolution(params, yard, a):
    rows, images = [], []
    for size in a.sizes:
        c, s = harness.load_pair(size)
        x, rep, _ = run(params, c, s, a.iters)
        grey = (x - c) @ np.array([0.299, 0.587, 0.114], np.float32)
        f = spectral_centroid(grey)
        rows.append({"size": size, "height": x.shape[0], "width": x.shape[1], **yard(x, c, s),
                     "centroid_cycles_per_pixel": f, "centroid_cycles_per_width": f * x.shape[1],
                     "seconds": rep["seconds"]})
        images.append(x)
        print(rows[-1], flush=True)
    fig = plt.figure(figsize=(6 * len(images), 5))
    show_row([fig.add_subplot(1, len(images), i + 1) for i in range(len(images))], images,
             [f"{r['size']} px: centroid {r['centroid_cycles_per_pixel']:.3f} cyc/px = "
              f"{r['centroid_cycles_per_width']:.0f} cyc/width" for r in rows])
    save(fig, "resolution", {"iters": a.iters, "rows": rows})


CLAIMS = {"weights": claim_weights, "init": claim_init, "pooling": claim_pooling,
          "solvers": claim_solvers, "resolution": claim_resolution}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("claim", nargs="?", choices=[*CLAIMS, "all"])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512], help="for 'resolution'")
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--adam-lr", type=float, nargs="+", default=[0.02, 0.05], help="for 'solvers'")
    harness.add_smoke(ap)
    a = ap.parse_args()
    if a.smoke:
        global OUT, POOLS, RATIOS
        OUT = os.path.join(harness.smoke_results(), "claims")
        # every claim on one Gatys program (each pooling and each solver is one of its own): max pooling only,
        # L-BFGS only
        a.claim, a.size, a.sizes, a.iters, a.adam_lr = a.claim or "all", 32, [32], 2, []
        POOLS, RATIOS = ("max",), RATIOS[::4]  # and two weight ratios, not five
    if a.claim is None:
        ap.error("the claim is required")
    params = with_winograd(vgg19_params())
    yard = Yardstick(params)
    print(f"machine: {harness.machine()}; {harness.versions()}")
    for name in CLAIMS if a.claim == "all" else [a.claim]:
        t = time.perf_counter()
        CLAIMS[name](params, yard, a)
        print(f"{name}: {time.perf_counter() - t:.0f} s", flush=True)


if __name__ == "__main__":
    main()
