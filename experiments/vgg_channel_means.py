"""Per-channel mean activations of the Caffe VGG-19 at relu1_1..relu5_1 over ImageNet photos.

Dividing each channel by its mean activation gives the "normalised" VGG-19 that Gatys et al. and
Huang & Belongie (pytorch-AdaIN's ``vgg_normalised.pth``) use: because ReLU is positively homogeneous,
rescaling a filter and un-scaling it in the next layer changes nothing else, so the normalised network's
features are exactly ``caffe_features / mean`` per channel.  The AdaIN decoder and SANet are trained and
run on these normalised features (``nst_jax/models/vgg19_channel_means.npz``; SANet's encoder reaches
relu5_1), which keeps every feature O(1) and the papers' loss weights and learning rates meaningful.

    python experiments/vgg_channel_means.py ../shared/datasets/imagenet-sample
    python experiments/vgg_channel_means.py --smoke   # 3 of those photos (not all) at 32 px, to a temporary
                                                      # folder (never the shipped file)
"""

import argparse
import json
from pathlib import Path

import harness
import jax
import numpy as np

from nst_jax import vgg19_features, vgg19_params
from nst_jax.data import ImageFolder, resize_short_side
from nst_jax.decoder import CHANNEL_MEANS_FILE, NORMALISED_LAYERS


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", nargs="?")
    ap.add_argument("--size", type=int, default=224, help="centre crop after resizing the short side")
    ap.add_argument("--out", default=str(CHANNEL_MEANS_FILE))
    harness.add_smoke(ap)
    args = ap.parse_args()
    if args.smoke:  # never the shipped file
        import shutil

        tmp = Path(harness.smoke_results())
        photos = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "imagenet-sample"
        (tmp / "photos").mkdir()
        for p in sorted(photos.glob("*.jpg"))[:3]:
            shutil.copy(p, tmp / "photos")
        args.folder, args.size, args.out = str(tmp / "photos"), 32, str(tmp / "vgg19_channel_means.npz")
    if args.folder is None:
        ap.error("the folder is required")
    params = vgg19_params()
    src = ImageFolder(args.folder)
    feats = jax.jit(lambda x: {k: v.mean(axis=(0, 1, 2)) for k, v in
                               vgg19_features(params, x, NORMALISED_LAYERS).items()})
    sums = {k: 0.0 for k in NORMALISED_LAYERS}
    n = 0
    batch = []
    for i in range(len(src)):
        img = src.load(i)
        if img is None:
            continue
        u8 = resize_short_side(img, args.size)
        h, w = u8.shape[:2]
        y, x = (h - args.size) // 2, (w - args.size) // 2
        batch.append(u8[y:y + args.size, x:x + args.size].astype(np.float32) / 255)
        if len(batch) == 16 or i == len(src) - 1:
            m = feats(np.stack(batch))
            for k in NORMALISED_LAYERS:
                sums[k] = sums[k] + np.asarray(m[k], np.float64) * len(batch)
            n += len(batch)
            batch = []
    means = {k: (v / n).astype(np.float32) for k, v in sums.items()}
    for k, v in means.items():
        print(f"{k}: {v.size} channels, mean of means {v.mean():.4g}, min {v.min():.4g}, "
              f"zero channels {(v == 0).sum()}")
    meta = {"images": n, "folder": Path(args.folder).name, "size": args.size,
            "weights": "Caffe VGG_ILSVRC_19 (Keras notop .h5, SHA-256 bde7da0d...)"}
    np.savez(args.out, **means, __meta__=np.array(json.dumps(meta)))
    print("wrote", args.out, meta)


if __name__ == "__main__":
    main()
