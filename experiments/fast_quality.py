"""How far does a trained feed-forward network move unseen photos toward its style, and how much content
stays?

For each photo (none is in the training set) at ``--size`` px:

* style distance: the relative Gram distance at the training's style layers (relu1_2, relu2_2, relu3_4,
  relu4_4), sum_l ||G_l(x) - G_l(style)||^2 / ||G_l(style)||^2, with the style image at the training's
  style size (512 px); of the output, and of the photo itself;
* content distance: the relative error of the training's content features (relu2_2),
  ||F(out) - F(photo)||^2 / ||F(photo)||^2, and the same for a control with no content (the painting
  resized to the photo's shape).

Also prints how the training's style term splits over its layers for each photo (the perceptual loss's
per-layer Gram MSE of the photo against the style), and writes a grid (photo | output) to
experiments/results/.

    python experiments/fast_quality.py --model starry_night --size 512
"""

import argparse
import json
import sys
from pathlib import Path

import jax.numpy as jnp
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from nst_jax import feedforward as F  # noqa: E402
from nst_jax import image as im  # noqa: E402
from nst_jax import vgg19_features, vgg19_params  # noqa: E402
from nst_jax.losses import gram_matrix  # noqa: E402

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared" / "images"
PHOTOS = ("tubingen.jpg", "golden_gate.jpg", "hoovertowernight.jpg")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="starry_night")
    ap.add_argument("--style", default=str(SHARED / "starry_night.jpg"))
    ap.add_argument("--style-size", type=int, default=512, help="as in training")
    ap.add_argument("--size", type=int, default=512)
    a = ap.parse_args()
    vgg = vgg19_params()
    style = im.resize_longest(im.load_image(a.style), a.style_size)
    grams = F.style_targets(vgg, jnp.asarray(style)[None])
    (clayer,) = F.CONTENT_LAYERS

    def style_d(x):
        f = vgg19_features(vgg, jnp.asarray(x)[None], F.STYLE_LAYERS)
        return sum(float(jnp.sum((gram_matrix(f[k]) - grams[k]) ** 2) / jnp.sum(grams[k] ** 2))
                   for k in F.STYLE_LAYERS)

    def content_d(x, photo):
        fx, fp = (vgg19_features(vgg, jnp.asarray(y)[None], (clayer,))[clayer] for y in (x, photo))
        return float(jnp.sum((fx - fp) ** 2) / jnp.sum(fp ** 2))

    rows, pairs = [], []
    for name in PHOTOS:
        photo = im.resize_longest(im.load_image(SHARED / name), a.size)
        out, _ = F.fast_stylize(photo, a.model, size=None)
        control = im.resize(style, photo.shape[:2])
        r = {"photo": name, "style_out": style_d(out), "style_photo": style_d(photo),
             "content_out": content_d(out, photo), "content_control": content_d(control, photo)}
        r["style_ratio"] = r["style_out"] / r["style_photo"]
        r["content_ratio"] = r["content_out"] / r["content_control"]
        fp = vgg19_features(vgg, jnp.asarray(photo)[None], F.STYLE_LAYERS)
        per = {k: float(jnp.mean((gram_matrix(fp[k]) - grams[k]) ** 2)) for k in F.STYLE_LAYERS}
        r["style_term_share_of_photo"] = {k: v / sum(per.values()) for k, v in per.items()}
        rows.append(r)
        pairs.append((photo, out))
        print(f"{name}: style distance output/photo {r['style_ratio']:.2f}, content distance "
              f"output/control {r['content_ratio']:.2f}; share of the style term per layer: "
              + ", ".join(f"{k} {v:.1%}" for k, v in r["style_term_share_of_photo"].items()), flush=True)
    out_dir = HERE / "results"
    fig, axes = plt.subplots(len(pairs), 2, figsize=(8, 3.2 * len(pairs)))
    for row, (photo, out), r in zip(axes, pairs, rows, strict=True):
        for ax, img, title in zip(row, (photo, out), (r["photo"], f"model {a.model}"), strict=True):
            ax.imshow(np.clip(img, 0, 1))
            ax.set_title(title, fontsize=8)
            ax.axis("off")
    fig.savefig(out_dir / f"fast_{Path(str(a.model)).stem}_grid_{a.size}.jpg", dpi=90, bbox_inches="tight")
    with open(out_dir / f"fast_{Path(str(a.model)).stem}_quality_{a.size}.json", "w") as f:
        json.dump({"model": str(a.model), "size": a.size, "rows": rows}, f, indent=2)
    print(f"wrote {out_dir}/fast_{Path(str(a.model)).stem}_grid_{a.size}.jpg")


if __name__ == "__main__":
    sys.exit(main())
