"""Where the periodic artefact of our learned networks comes from, by measurement.

The shipped AdaIN decoder and the shipped fast network put sharp peaks into the spectrum of their pictures
at periods of 2, 4 and 8 px (:func:`nst_jax.metrics.periodic_peaks`).  Each suspect is tested by changing it
alone and measuring the peaks again, on held-back photos (the quality harness's three and three held-back
photos of photos-extra), AdaIN with Starry Night, the fast network with its Starry Night style, at 256, 512
and 1024 px on the longest side:

* the **output** as shipped;
* its **interior** (the central 3/4 of each side): the reflection padding at the sides;
* **another size** (longest side 509: padding to a multiple of 8 / 4 at the bottom and right, cropped back);
* **weights perturbed by float16's rounding** (each weight times 1 + u, u uniform in +-2^-11): the float16
  storage of the network files;
* **bilinear instead of nearest-neighbour upsampling**, the same weights: the upsamplings followed by 3x3
  convolutions;
* **layer by layer** (512 px): the peaks of each layer's feature maps (the highest over 16 channels) at the
  periods that map has in output pixels (a map at 1/4 of the size can hold the 8-px period as its 2-px one);
  the encoder's features (and its max pooling) are at 1/8 of the size and cannot hold a period under 8 px.

    python experiments/periodic_artifacts.py            # -> results/artifacts/periodic_cause.json, zoom.jpg
    python experiments/periodic_artifacts.py --smoke    # one photo at 128 px, no 1024, a temporary folder
"""

from __future__ import annotations

import argparse
import json
import statistics

import harness
import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
from quality import SHARED, held_back_extra

from nst_jax import adain, feedforward, metrics, modules
from nst_jax import image as im
from nst_jax.vgg import vgg19_params

EXTRA = SHARED.parents[0] / "datasets" / "photos-extra"
PAINTING = "starry_night"


def photos(n_extra: int = 3):
    """The quality harness's held-back photos and the first ``n_extra`` held-back photos of photos-extra."""
    paths = [SHARED / f"{p}.jpg" for p in ("tubingen", "golden_gate", "hoovertowernight")]
    extra = sorted(p for p in EXTRA.glob("*.jpg") if held_back_extra(p.name))
    return paths + extra[:n_extra]


def perturbed(params, seed: int = 0):
    """Each weight times (1 + u), u uniform in [-2^-11, 2^-11]: float16's rounding, made again."""
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    return jax.tree_util.tree_unflatten(tree, [
        a * (1 + 2.0 ** -11 * jax.random.uniform(k, a.shape, minval=-1, maxval=1))
        for a, k in zip(leaves, keys, strict=True)])


class Networks:
    """Both shipped networks, run with any upsampling and parameters, optionally with every layer's output."""

    def __init__(self):
        self.vgg = vgg19_params()
        self.decoder, _ = adain.load_decoder()
        self.fast, meta = feedforward.load_model(feedforward.DEFAULT_MODEL)
        self.fast_style = feedforward.choose_style(self.fast, meta)
        painting = im.resize_longest(im.load_image(SHARED / f"{PAINTING}.jpg"), 512)
        self.style_f = adain.encode(self.vgg, jnp.asarray(painting)[None])[adain.ENCODER_LAYER]

    def adain(self, photo, upsample="nearest", params=None, layers=False):
        h, w = photo.shape[:2]
        x = jnp.asarray(photo)[None]
        pad = (-h % adain.MULTIPLE, -w % adain.MULTIPLE)
        x = jnp.pad(x, ((0, 0), (0, pad[0]), (0, pad[1]), (0, 0)), mode="reflect")
        t = adain.adain(adain.encode(self.vgg, x)[adain.ENCODER_LAYER], self.style_f)
        net, p = modules.Decoder(upsample=upsample), self.decoder if params is None else params
        if layers:
            out, state = net.apply({"params": p}, t, capture_intermediates=True, mutable=["intermediates"])
        else:
            out, state = net.apply({"params": p}, t), None
        return np.clip(np.asarray(out[0, :h, :w]), 0, 1), state

    def fast_net(self, photo, upsample="nearest", params=None, layers=False):
        h, w = photo.shape[:2]
        x = jnp.asarray(photo)[None]
        pad = (-h % feedforward.MULTIPLE, -w % feedforward.MULTIPLE)
        x = jnp.pad(x, ((0, 0), (0, pad[0]), (0, pad[1]), (0, 0)), mode="reflect")
        p = self.fast if params is None else params
        net = modules.TransformNet(feedforward.num_styles(p), upsample)
        style = None if self.fast_style is None else jnp.asarray(self.fast_style)[None]
        if layers:
            out, state = net.apply({"params": p}, x, style, capture_intermediates=True,
                                   mutable=["intermediates"])
        else:
            out, state = net.apply({"params": p}, x, style), None
        return np.clip(np.asarray(out[0, :h, :w]), 0, 1), state


def layer_peaks(state, out_h: int, channels: int = 16):
    """``{layer: {period in output px: peak}}`` for every layer output that ``capture_intermediates`` kept
    (the highest over ``channels`` channels spread evenly), at the map's own periods 2, 4, 8 that are 2, 4 or
    8 output px; maps under 64 px on a side are left out."""
    rows = {}
    flat = jax.tree_util.tree_flatten_with_path(state["intermediates"])[0]
    for path, value in flat:
        name = "/".join(str(getattr(k, "key", k)) for k in path[:-1]).replace("/__call__", "")
        name = "output" if name == "__call__" else name
        if value.ndim != 4 or min(value.shape[1:3]) < 64 or "/" in name:  # the networks' own layers only
            continue
        scale = max(1, round(out_h / value.shape[1]))        # the map is 1/scale of the output
        periods = tuple(p for p in (2, 4, 8) if p * scale in (2, 4, 8))
        if not periods:
            continue
        f = np.asarray(value[0], np.float64)
        best = {p * scale: 0.0 for p in periods}
        for c in np.linspace(0, f.shape[-1] - 1, min(channels, f.shape[-1])).round().astype(int):
            if f[..., c].std() < 1e-9:
                continue
            grey = np.repeat(f[..., c:c + 1], 3, -1)
            for p, v in metrics.periodic_peaks(grey, periods).items():
                best[p * scale] = max(best[p * scale], v)
        rows[name] = {str(k): round(v, 2) for k, v in best.items()}
    return rows


def rounded(d):
    return {str(k): round(v, 2) for k, v in d.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    harness.add_smoke(ap)
    a = ap.parse_args()
    paths = photos()
    if a.smoke:
        harness.smoke_results()
        a.sizes, paths = [128], paths[:1]
    nets = Networks()
    out = {"machine": harness.machine(), "painting": PAINTING, "photos": [p.name for p in paths], "runs": {}}
    zoom_size = 512 if 512 in a.sizes else a.sizes[0]
    zoom = []
    for method, run in (("adain", nets.adain), ("fast", nets.fast_net)):
        noisy = perturbed(nets.decoder if method == "adain" else nets.fast)
        for size in a.sizes:
            rows = []
            for path in paths:
                photo = im.resize_longest(im.load_image(path), size)
                shipped, bilinear = run(photo)[0], run(photo, "bilinear")[0]
                h, w = shipped.shape[:2]
                pictures = {"shipped": shipped,
                            "interior": shipped[h // 8:h - h // 8, w // 8:w - w // 8],
                            f"size {size - 3}": run(im.resize_longest(im.load_image(path), size - 3))[0],
                            "float16 rounding": run(photo, params=noisy)[0],
                            "bilinear": bilinear,
                            "the photo": photo}
                rows.append({"photo": path.name,
                             **{k: rounded(metrics.periodic_peaks(v)) for k, v in pictures.items()}})
                if path == paths[min(1, len(paths) - 1)] and size == zoom_size:
                    zoom.append((photo, shipped, bilinear))
                print(method, size, json.dumps(rows[-1]), flush=True)
            median = {k: statistics.median(max(r[k].values()) for r in rows) for k in rows[0] if k != "photo"}
            out["runs"][f"{method} {size}"] = {"median of the highest peak": median, "rows": rows}
            print(method, size, "median of the highest peak:", json.dumps(median), flush=True)
        photo = im.resize_longest(im.load_image(paths[0]), zoom_size)
        out["runs"][f"{method} layers {zoom_size}"] = layers = layer_peaks(run(photo, layers=True)[1],
                                                                           photo.shape[0])
        print(method, "layers:", json.dumps(layers), flush=True)
    harness.save(harness.result_path("artifacts", "periodic_cause.json"), out)
    cells = []
    for photo, shipped, bilinear in zoom:  # a quarter of the picture, 3x, no smoothing
        h, w = photo.shape[:2]
        box = (slice(h // 3, h // 3 + h // 4), slice(w // 3, w // 3 + w // 4))
        cells.append(np.concatenate([shipped[box], bilinear[box]], axis=1))
    width = max(c.shape[1] for c in cells)
    sheet = np.concatenate([np.pad(c, ((0, 0), (0, width - c.shape[1]), (0, 0))) for c in cells], axis=0)
    sheet = Image.fromarray(im.to_uint8(sheet))
    sheet = sheet.resize((sheet.width * 3, sheet.height * 3), Image.NEAREST)
    sheet.save(harness.result_path("artifacts", "zoom_nearest_vs_bilinear.jpg"), quality=92)


if __name__ == "__main__":
    main()
