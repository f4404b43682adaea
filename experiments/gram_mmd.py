"""Gram matching is MMD with a quadratic kernel (Li, Wang, Liu & Hou 2017, "Demystifying Neural Style
Transfer"), shown numerically on real VGG-19 features.

For feature vectors x_1..x_M (positions of image x, C channels each) and s_1..s_N (of the style s),
with G(x) = sum_i x_i x_i^T / (C M) and k(a, b) = (a . b)^2:

    ||G(x) - G(s)||_F^2 = ( mean_ij k(x_i, x_j) + mean_ij k(s_i, s_j) - 2 mean_ij k(x_i, s_j) ) / C^2

i.e. nst_jax's style loss (the mean over the C^2 Gram entries) equals MMD^2_k / C^4.  Both sides are
computed here in float64 NumPy from the same features: the left through the C x C Gram matrices, the
right through the M x N kernel sums, which never form a Gram matrix.  3 photos x 4 paintings x 5 layers.

    python experiments/gram_mmd.py --size 96
    python experiments/gram_mmd.py --smoke   # 32 px, one photo x one painting, a temporary folder
"""

import argparse
import json
import os

import harness  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib  # noqa: E402
import numpy as np  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from nst_jax import vgg19_features, vgg19_params  # noqa: E402

LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
PHOTOS = ("tubingen.jpg", "golden_gate.jpg", "hoovertowernight.jpg")
PAINTINGS = ("starry_night.jpg", "the_scream.jpg", "shipwreck.jpg", "woman-with-hat-matisse.jpg")


def kernel_mean(a, b, block=2048):
    """mean over i, j of (a_i . b_j)^2, in blocks (float64)."""
    total = 0.0
    for i in range(0, len(a), block):
        total += float(np.sum((a[i:i + block] @ b.T) ** 2))
    return total / (len(a) * len(b))


def gram_side(x, s):
    c = x.shape[1]
    gx, gs = x.T @ x / (c * len(x)), s.T @ s / (c * len(s))
    return float(np.mean((gx - gs) ** 2))


def mmd_side(x, s):
    c = x.shape[1]
    return (kernel_mean(x, x) + kernel_mean(s, s) - 2 * kernel_mean(x, s)) / c ** 4


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=96, help="longest side of every image")
    harness.add_smoke(ap)
    a = ap.parse_args()
    photos, paintings = PHOTOS, PAINTINGS
    if a.smoke:
        harness.smoke_results()
        a.size, photos, paintings = 32, PHOTOS[:1], PAINTINGS[:1]
    params = vgg19_params()
    rows = []
    for photo in photos:
        for painting in paintings:
            c, s = harness.load_pair(a.size, photo, painting)
            fc = vgg19_features(params, jnp.asarray(c)[None], LAYERS)
            fs = vgg19_features(params, jnp.asarray(s)[None], LAYERS)
            for layer in LAYERS:
                x = np.asarray(fc[layer], np.float64).reshape(-1, fc[layer].shape[-1])
                y = np.asarray(fs[layer], np.float64).reshape(-1, fs[layer].shape[-1])
                g, m = gram_side(x, y), mmd_side(x, y)
                rows.append({"photo": photo, "painting": painting, "layer": layer, "gram": g, "mmd": m,
                             "rel_err": abs(g - m) / abs(g), "positions": [len(x), len(y)]})
            print(f"{photo} / {painting}: max relative difference "
                  f"{max(r['rel_err'] for r in rows[-len(LAYERS):]):.1e}", flush=True)
    worst = max(r["rel_err"] for r in rows)
    print(f"{len(rows)} (pair, layer) cases; largest relative difference {worst:.2e}")
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for layer, marker in zip(LAYERS, "osD^v", strict=True):
        pts = [(r["gram"], r["mmd"]) for r in rows if r["layer"] == layer]
        ax.loglog(*zip(*pts, strict=True), marker, label=layer, alpha=0.7)
    lo = min(min(r["gram"], r["mmd"]) for r in rows)
    hi = max(max(r["gram"], r["mmd"]) for r in rows)
    ax.plot([lo, hi], [lo, hi], "k-", lw=0.8, label="y = x")
    ax.set_xlabel("Gram loss  mean((G(x) - G(s))²)")
    ax.set_ylabel("MMD² with k(a, b) = (a·b)², divided by C⁴")
    ax.set_title(f"{len(rows)} cases, largest relative difference {worst:.1e}", fontsize=9)
    ax.legend(fontsize=8)
    out = os.path.join(harness.RESULTS, "claims")
    os.makedirs(out, exist_ok=True)
    fig.savefig(os.path.join(out, "gram_mmd.png"), dpi=110, bbox_inches="tight")
    with open(os.path.join(out, "gram_mmd.json"), "w") as f:
        json.dump({"size": a.size, "largest_relative_difference": worst, "rows": rows}, f, indent=2)
    print(f"wrote {out}/gram_mmd.png/.json")


if __name__ == "__main__":
    main()
