"""Pack what a GPU machine needs into one folder that travels with the working tree (at most 64 MiB with
the repository; ../shared and the weights cache stay behind).

    python experiments/gpu_pack.py .gpu           # .gpu/{vgg19_to_conv5_1.npz, images/, photos/, styles/}
    python experiments/gpu_pack.py --unpack .gpu  # (on the GPU machine) .gpu/vgg19_full.npz, NST_JAX_WEIGHTS
    python experiments/gpu_pack.py --smoke [DIR]  # a tiny pack (2 photos, 2 paintings), then unpacked, in DIR
                                                  # (default: a new temporary folder); not the full sets

* VGG-19: the layers every method uses (conv1_1 .. conv5_1) in float16 (24.6 MiB instead of 80 MB). The
  unpacked file is a complete nst_jax .npz, float32, with conv5_2 .. conv5_4 zero (no method reads them:
  vgg19_features stops at the deepest requested layer).  Every number measured with it, JAX's and
  PyTorch's alike, uses the same float16-rounded weights (relative rounding 2^-11).
* Training photos: ../shared/datasets/imagenet-sample, each already 256 px on its shorter side, centre-cut to
  at most 256 x 288 and re-encoded (JPEG quality 75).
* Training paintings: ../shared/datasets/styles minus the paintings held back for evaluation
  (experiments/quality.py HELD_BACK_STYLES), resized to 256 px on the shorter side as training does
  (nst_jax.data.resize_short_side) and stored as JPEG quality 92.
* The benchmark and evaluation images of ../shared/images.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared"
KEEP = ("conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3", "conv3_4",
        "conv4_1", "conv4_2", "conv4_3", "conv4_4", "conv5_1")


def pack(dst: Path, photos_max: int | None, styles_max: int | None = None):
    from quality import HELD_BACK_STYLES

    from nst_jax import image as im
    from nst_jax import weights as W
    from nst_jax.data import resize_short_side

    dst.mkdir(parents=True, exist_ok=True)
    arrays = W.read_arrays(W.resolve())
    small = {k: (v.astype(np.float16) if k.split(".")[0] in KEEP else v) for k, v in arrays.items()
             if k.split(".")[0] in KEEP or k.startswith("preprocess")}
    np.savez(dst / "vgg19_to_conv5_1.npz", **small)
    (dst / "images").mkdir(exist_ok=True)
    for p in sorted((SHARED / "images").glob("*.jpg")):
        (dst / "images" / p.name).write_bytes(p.read_bytes())
    (dst / "photos").mkdir(exist_ok=True)
    photos = sorted((SHARED / "datasets" / "imagenet-sample").glob("*.jpg"))[:photos_max]
    for p in photos:
        with Image.open(p) as img:
            rgb = img.convert("RGB")
        w, h = rgb.size
        cw, ch = min(w, 288), min(h, 288)
        left, top = (w - cw) // 2, (h - ch) // 2
        rgb.crop((left, top, left + cw, top + ch)).save(dst / "photos" / p.name, quality=75)
    (dst / "styles").mkdir(exist_ok=True)
    n_styles = 0
    for p in sorted((SHARED / "datasets" / "styles").rglob("*")):
        if not p.is_file() or p.name in HELD_BACK_STYLES:
            continue
        if styles_max is not None and n_styles >= styles_max:
            break
        try:
            u8 = resize_short_side(im.load_image(p), 256)
        except Exception:
            continue
        Image.fromarray(u8).save(dst / "styles" / (p.stem + ".jpg"), quality=92)
        n_styles += 1
    total = sum(f.stat().st_size for f in dst.rglob("*") if f.is_file())
    print(f"{dst}: {len(photos)} photos, {n_styles} paintings, {total / 2**20:.1f} MiB")


def unpack(src: Path):
    from nst_jax import weights as W

    with np.load(src / "vgg19_to_conv5_1.npz") as z:
        arrays = {k: z[k].astype(np.float32) for k in z.files}
    for name, shape in W.conv_shapes().items():
        if f"{name}.kernel" not in arrays:
            arrays[f"{name}.kernel"] = np.zeros(shape, np.float32)
            arrays[f"{name}.bias"] = np.zeros(shape[3], np.float32)
    np.savez(src / "vgg19_full.npz", format=W.NPZ_FORMAT, source="gpu_pack (float16-rounded)", **arrays)
    print(src / "vgg19_full.npz")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", nargs="?")
    ap.add_argument("--unpack", action="store_true")
    ap.add_argument("--photos", type=int, help="at most this many training photos")
    ap.add_argument("--smoke", action="store_true",
                    help="a tiny pack (2 photos, 2 paintings) in FOLDER (default: a new temporary folder), "
                         "then unpacked there")
    a = ap.parse_args()
    if a.smoke:
        import tempfile

        folder = Path(a.folder or tempfile.mkdtemp(prefix="nst_smoke_gpu_"))
        pack(folder, 2, 2)
        unpack(folder)
        return
    if a.folder is None:
        ap.error("the folder is required")
    unpack(Path(a.folder)) if a.unpack else pack(Path(a.folder), a.photos)


if __name__ == "__main__":
    main()
