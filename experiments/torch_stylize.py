"""The PyTorch reference as a command, the counterpart of ``nst-jax stylize`` for process-level timing:
import torch, read the VGG-19 .h5, load and resize both images, compute the targets, run
torch.optim.LBFGS without line search (neural-style-pt's setting) and write a PNG.  It does not import
nst_jax or JAX, so its time is PyTorch's alone.

    python experiments/torch_stylize.py CONTENT STYLE -o OUT.png --size 256 --iters 50 --h5 WEIGHTS.h5
    python experiments/torch_stylize.py --smoke   # tubingen x starry_night, 32 px, 2 iterations, the .h5 of
                                                  # nst_jax's cache, the PNG in a temporary folder

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


def smoke(a):
    """--smoke: the benchmark images, 32 px, 2 iterations, nst_jax's cached .h5 (found without importing JAX
    when it is there), the output in a temporary folder."""
    import os

    from harness import IMAGES, smoke_results

    home = os.environ.get("NST_JAX_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "nst_jax")
    a.content = a.content or os.path.join(IMAGES, "tubingen.jpg")
    a.style = a.style or os.path.join(IMAGES, "starry_night.jpg")
    a.output = os.path.join(smoke_results(), "torch.png")
    a.size, a.iters = 32, 2
    a.h5 = a.h5 or os.path.join(home, "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5")
    if not os.path.isfile(a.h5):
        from nst_jax import weights

        weights.fetch()
        a.h5 = str(weights.cached_h5())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("content", nargs="?")
    ap.add_argument("style", nargs="?")
    ap.add_argument("-o", "--output")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--iters", type=int, default=500)
    ap.add_argument("--h5", help="the Keras/Caffe VGG-19 .h5 (nst_jax's cache holds it)")
    ap.add_argument("--smoke", action="store_true",
                    help="tubingen x starry_night at 32 px, 2 iterations, nst_jax's cached .h5, a temporary "
                         "folder")
    a = ap.parse_args()
    if a.smoke:
        smoke(a)
    missing = [n for n in ("content", "style", "output", "h5") if getattr(a, n) is None]
    if missing:
        ap.error("required: " + ", ".join(missing))
    vgg = tr.CaffeVGG19(a.h5)
    c = tr.nchw(load(a.content, a.size)[None])
    s = tr.nchw(load(a.style, a.size)[None])
    obj = tr.GatysObjective(vgg, c, s)
    y, _ = tr.lbfgs(lambda v: obj(v / 255.0), c * 255.0, a.iters)  # pixel units 0..255, as neural-style-pt
    out = (y / 255.0).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    Image.fromarray((out * 255.0 + 0.5).astype(np.uint8)).save(a.output)
    if a.smoke:
        print("wrote", a.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
