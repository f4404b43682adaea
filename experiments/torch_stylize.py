"""The PyTorch reference as a command, the counterpart of ``nst-jax stylize`` for process-level timing:
import torch, read the VGG-19 .h5, load and resize both images, compute the targets, run
torch.optim.LBFGS without line search (neural-style-pt's setting) and write a PNG.  It does not import
nst_jax or JAX, so its time is PyTorch's alone.

    python experiments/torch_stylize.py CONTENT STYLE -o OUT.png --size 256 --iters 50 --h5 WEIGHTS.h5

Same defaults as nst-jax stylize: content initialisation, content 5 / style 100 / TV 5e-4, content at
relu4_2, style at relu1_1..relu5_1, history 100, style resized to the same longest side, Lanczos
resampling of float images (as nst_jax.image.resize).
"""

import argparse
import sys

import numpy as np
import torch_reference as tr  # noqa: E402
from PIL import Image


def load(path, longest):
    with Image.open(path) as im:
        rgb = np.asarray(im.convert("RGB"), np.float32) / 255.0
    h, w = rgb.shape[:2]
    scale = longest / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    chans = [np.asarray(Image.fromarray(np.ascontiguousarray(rgb[..., c]), mode="F")
                        .resize(size, Image.Resampling.LANCZOS)) for c in range(3)]
    return np.clip(np.stack(chans, -1), 0.0, 1.0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("content")
    ap.add_argument("style")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--iters", type=int, default=500)
    ap.add_argument("--h5", required=True, help="the Keras/Caffe VGG-19 .h5 (nst_jax's cache holds it)")
    a = ap.parse_args()
    vgg = tr.CaffeVGG19(a.h5)
    c = tr.nchw(load(a.content, a.size)[None])
    s = tr.nchw(load(a.style, a.size)[None])
    obj = tr.GatysObjective(vgg, c, s)
    y, _ = tr.lbfgs(lambda v: obj(v / 255.0), c * 255.0, a.iters)  # pixel units 0..255, as neural-style-pt
    out = (y / 255.0).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    Image.fromarray((out * 255.0 + 0.5).astype(np.uint8)).save(a.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
