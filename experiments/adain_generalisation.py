"""Does the shipped AdaIN decoder generalise?  Its training loss on images it trained on against images it
never saw.

The decoder's training loss (Huang & Belongie 2017: content = MSE(f(g), t) at relu4_1, style = the moment
distances over relu1_1..relu4_1, total = content + 10 style; :func:`nst_jax.adain_train.adain_loss`) on
centre crops like the training crops, for four sets of pairs:

* photos it trained on (../shared/datasets/imagenet-sample) or never saw (the held-back part of
  ../shared/datasets/photos-extra, :func:`quality.held_back_extra`);
* paintings it trained on (../shared/datasets/styles without the four held back for the quality harness) or
  never saw (the held-back part of ../shared/datasets/styles-extra).

Every decoder we train leaves the held-back parts out (``experiments/pack_training_data.py``), so the same
cells measure the shipped decoder and a new one (``--decoder``).

If the unseen rows are much higher than the seen ones, more data is what the decoder lacks; if they are
equal, it is training (or capacity).

    python experiments/adain_generalisation.py --pairs 48 --crop 256
    python experiments/adain_generalisation.py --decoder runs/adain/decoder.npz --out /tmp/gen.json
    python experiments/adain_generalisation.py --smoke   # all four cells, 1 pair each (not 48), 32 px crops,
                                                         # a temporary folder
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import harness
import jax
import jax.numpy as jnp
import numpy as np
from quality import HELD_BACK_STYLES, RESULTS, held_back_extra

from nst_jax import adain
from nst_jax import image as im
from nst_jax.adain_train import adain_loss
from nst_jax.data import resize_short_side
from nst_jax.vgg import vgg19_params

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def files(folder: Path):
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def sets():
    paintings_seen = [p for p in files(DATA / "styles") if p.name not in HELD_BACK_STYLES]
    paintings_unseen = [p for p in files(DATA / "styles-extra") if held_back_extra(p.name)]
    photos_unseen = [p for p in files(DATA / "photos-extra") if held_back_extra(p.name)]
    return {"photos": {"seen": files(DATA / "imagenet-sample"), "unseen": photos_unseen},
            "paintings": {"seen": paintings_seen, "unseen": paintings_unseen}}


def spread(paths, n: int):
    """``n`` paths spread evenly over the sorted list (deterministic; all of them when there are fewer)."""
    idx = np.unique(np.linspace(0, len(paths) - 1, min(n, len(paths))).round().astype(int))
    return [paths[i] for i in idx]


def crop(path: Path, size: int) -> np.ndarray:
    x = resize_short_side(im.load_image(path), size)
    h, w = x.shape[:2]
    top, left = (h - size) // 2, (w - size) // 2
    return x[top:top + size, left:left + size].astype(np.float32) / 255.0  # resize_short_side: uint8


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=48,
                    help="pairs per cell (photos and paintings spread evenly)")
    ap.add_argument("--crop", type=int, default=256,
                    help="square crop of the image resized to this short side")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--decoder", help="decoder .npz (default: the shipped one)")
    ap.add_argument("--out", default=str(RESULTS / "adain" / "generalisation.json"))
    harness.add_smoke(ap)
    a = ap.parse_args()
    if a.smoke:
        a.pairs, a.crop, a.batch = 1, 32, 1
        a.out = str(Path(harness.smoke_results()) / "adain" / "generalisation.json")

    vgg = vgg19_params()
    decoder, meta = adain.load_decoder(a.decoder)
    up = adain.upsampling(meta)  # the decoder's own (a bilinear decoder scored as a nearest one is not it)
    loss = jax.jit(lambda c, s: jax.vmap(lambda ci, si: adain_loss(decoder, vgg, ci[None], si[None],
                                                                   upsample=up))(c, s))
    s = sets()
    out = {"crop": a.crop, "pairs": a.pairs, "decoder": a.decoder or "shipped",
           "decoder_steps": meta.get("cumulative", {}).get("steps"),
           "set_sizes": {k: {kk: len(vv) for kk, vv in v.items()} for k, v in s.items()}, "cells": {}}
    for photos in ("seen", "unseen"):
        for paintings in ("seen", "unseen"):
            n = min(a.pairs, len(s["photos"][photos]), len(s["paintings"][paintings]))
            ps = spread(s["photos"][photos], n)
            ss = spread(s["paintings"][paintings], n)
            ss = ss[len(ss) // 3:] + ss[:len(ss) // 3]  # not photo i with painting i of the same order
            rows = []
            for i in range(0, n, a.batch):
                c = jnp.asarray(np.stack([crop(p, a.crop) for p in ps[i:i + a.batch]]))
                st = jnp.asarray(np.stack([crop(p, a.crop) for p in ss[i:i + a.batch]]))
                total, terms = loss(c, st)
                for j in range(len(c)):
                    rows.append({"photo": ps[i + j].name, "painting": ss[i + j].name,
                                 "total": float(total[j]), "content": float(terms["content"][j]),
                                 "style": float(terms["style"][j])})
            cell = {k: statistics.median(r[k] for r in rows) for k in ("total", "content", "style")}
            cell["mean"] = {k: statistics.fmean(r[k] for r in rows) for k in ("total", "content", "style")}
            cell["rows"] = rows
            out["cells"][f"photos {photos} x paintings {paintings}"] = cell
            print(f"photos {photos:6s} x paintings {paintings:6s}: median total {cell['total']:.2f} "
                  f"content {cell['content']:.3f} style {cell['style']:.3f}  "
                  f"(mean {cell['mean']['total']:.2f} / {cell['mean']['content']:.3f} / "
                  f"{cell['mean']['style']:.3f})", flush=True)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=1))
    print("wrote", a.out)


if __name__ == "__main__":
    main()
