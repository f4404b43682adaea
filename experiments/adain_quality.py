"""How far does a trained AdaIN decoder move unseen photos toward a painting, and how much content stays?

For each (photo, painting) pair, at 256 or 512 px:

* style distance: AdaIN's style loss, the sum over relu1_1..relu4_1 of MSE(channel means) +
  MSE(channel stds) of normalised VGG-19 features; of the output vs the painting, and of the photo
  vs the painting;
* content distance: relative MSE of relu4_1 features, ||f(out) - f(photo)||^2 / ||f(photo)||^2, and
  the same for a control image (the painting resized to the photo's shape), i.e. what "no content"
  scores.

Also writes an image grid (photo | painting | alpha 0.5 | alpha 1) to experiments/results/adain/.

    python experiments/adain_quality.py --decoder nst_jax/models/adain_decoder.npz --size 512
    python experiments/adain_quality.py --smoke   # 32 px, one photo x one painting (one shape: each is a
                                                  # compiled program of its own), a temporary folder
"""

import argparse
import json
import os
import sys
from pathlib import Path

import harness
import jax.numpy as jnp
import numpy as np

from nst_jax import adain as A
from nst_jax import image as im
from nst_jax import vgg19_params

SHARED = Path(__file__).resolve().parents[2] / "shared" / "images"
PHOTOS = ("tubingen.jpg", "golden_gate.jpg", "hoovertowernight.jpg")
PAINTINGS = ("starry_night.jpg", "the_scream.jpg", "shipwreck.jpg", "woman-with-hat-matisse.jpg")


def distances(vgg, out, content, style):
    def feats(x):
        return A.encode(vgg, jnp.asarray(x)[None], A.STYLE_LAYERS)

    fo, fc, fs = feats(out), feats(content), feats(style)

    def style_d(f):
        total = 0.0
        for k in A.STYLE_LAYERS:
            m1, s1 = A.mean_std(f[k])
            m2, s2 = A.mean_std(fs[k])
            total += float(jnp.mean((m1 - m2) ** 2) + jnp.mean((s1 - s2) ** 2))
        return total

    def content_d(f):
        a, b = f[A.ENCODER_LAYER], fc[A.ENCODER_LAYER]
        return float(jnp.sum((a - b) ** 2) / jnp.sum(b ** 2))

    control = im.resize(style, content.shape[:2])
    return {"style_out": style_d(fo), "style_photo": style_d(fc), "content_out": content_d(fo),
            "content_control": content_d(feats(control))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--decoder", default=None, help="default: the shipped decoder")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--images", default=str(SHARED))
    ap.add_argument("--grid", default=None, help="grid image path (default experiments/results/adain/...)")
    harness.add_smoke(ap)
    a = ap.parse_args()
    photos, paintings = PHOTOS, PAINTINGS
    out_dir = Path(__file__).parent / "results" / "adain"
    if a.smoke:
        a.size, photos, paintings = 32, PHOTOS[:1], PAINTINGS[:1]
        out_dir = Path(harness.smoke_results()) / "adain"
    root = Path(a.images)
    if not root.is_dir():
        sys.exit(f"{root} not found: this experiment needs ../shared/images")
    vgg = vgg19_params()
    decoder, meta = A.load_decoder(a.decoder)
    rows, tiles = [], []
    for p in photos:
        content = im.resize_longest(im.load_image(root / p), a.size)
        for s in paintings:
            style = im.resize_longest(im.load_image(root / s), a.size)
            out, _ = A.stylize(content, style, decoder=decoder, weights=vgg, size=None, style_size=None)
            half, _ = A.stylize(content, style, alpha=0.5, decoder=decoder, weights=vgg, size=None,
                                      style_size=None)
            d = distances(vgg, out, content, style)
            rows.append({"photo": p, "painting": s, **d})
            print(f"{p:22s} {s:28s} style {d['style_photo']:.3f} -> {d['style_out']:.3f} "
                  f"({d['style_out'] / d['style_photo']:.2f}x)  content {d['content_out']:.3f} "
                  f"(control {d['content_control']:.3f})", flush=True)
            if p == PHOTOS[0] or s == PAINTINGS[0]:
                h = 192
                tiles.append([im.resize(x, (h, round(x.shape[1] * h / x.shape[0]))) for x in
                              (content, style, half, out)])
    ratios = [r["style_out"] / r["style_photo"] for r in rows]
    c_ratio = [r["content_out"] / r["content_control"] for r in rows]
    summary = {"decoder": a.decoder or "shipped", "decoder_meta_step": meta.get("step"), "size": a.size,
               "median_style_ratio": float(np.median(ratios)), "max_style_ratio": float(np.max(ratios)),
               "median_content_vs_control": float(np.median(c_ratio)),
               "max_content_vs_control": float(np.max(c_ratio)), "pairs": rows}
    print(json.dumps({k: v for k, v in summary.items() if k != "pairs"}))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"adain_quality_{a.size}.json").write_text(json.dumps(summary, indent=2))
    width = max(sum(t.shape[1] for t in row) + 4 * (len(row) - 1) for row in tiles)
    grid = np.ones((len(tiles) * 196, width, 3), np.float32)
    for i, row in enumerate(tiles):
        x = 0
        for t in row:
            grid[i * 196: i * 196 + t.shape[0], x: x + t.shape[1]] = t
            x += t.shape[1] + 4
    path = a.grid or str(out_dir / f"adain_grid_{a.size}.jpg")
    im.save_image(path, grid)
    print("grid:", path)


if __name__ == "__main__":
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    main()
