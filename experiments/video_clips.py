"""Test clips for the video benchmarks, made from photos the project never trained on (held back from
../shared/datasets/photos-extra): a camera pan with a known motion and a zoom.

* ``pan/``: 12 frames of 256x176, the camera moving 3 px right and 1 px down per frame over the photo (so
  frame t+1 at x shows what frame t showed at x + (3, 1): an exact, known flow); ``pan.mp4`` the same as
  H.264 at 24 fps.
* ``zoom/``: 12 frames of 256x176, the camera zooming in by 2% a frame towards the centre (each frame
  resampled from the photo: a flow with sub-pixel motion, estimated by the benchmarks).

    python experiments/video_clips.py --out out/video_clips
    python experiments/video_clips.py --smoke   # both clips and pan.mp4, 3 frames of 64x48 each (not 12 of
                                                # 256x176), in a temporary folder
"""

from __future__ import annotations

import argparse
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments import harness  # noqa: E402
from nst_jax import image as im  # noqa: E402
from nst_jax import videoio  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "photos-extra"
PHOTOS = {"pan": "sun-hays80-img_044.jpg", "zoom": "urban100-img_047.jpg"}  # both held back (quality.py)
FRAMES, WIDTH, HEIGHT = 12, 256, 176
PAN = (3, 1)  # px right, px down per frame


def pan_frames(photo: np.ndarray) -> list[np.ndarray]:
    big = im.resize(photo, (HEIGHT + 64, round(photo.shape[1] * (HEIGHT + 64) / photo.shape[0])))
    x0, y0 = 8, 8
    return [big[y0 + PAN[1] * t: y0 + PAN[1] * t + HEIGHT, x0 + PAN[0] * t: x0 + PAN[0] * t + WIDTH]
            for t in range(FRAMES)]


def zoom_frames(photo: np.ndarray, rate: float = 1.02) -> list[np.ndarray]:
    from PIL import Image

    big = im.resize(photo, (2 * HEIGHT, round(photo.shape[1] * 2 * HEIGHT / photo.shape[0])))
    h, w = big.shape[:2]
    cy, cx = h / 2, w / 2
    frames = []
    for t in range(FRAMES):
        s = rate ** t
        bh, bw = 2 * HEIGHT / s * 0.8, 2 * WIDTH / s * 0.8
        box = (cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2)
        chans = [np.asarray(Image.fromarray(np.ascontiguousarray(big[..., c]), mode="F")
                            .resize((WIDTH, HEIGHT), Image.Resampling.LANCZOS, box=box)) for c in range(3)]
        frames.append(np.clip(np.stack(chans, -1), 0, 1).astype(np.float32))
    return frames


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="out/video_clips")
    harness.add_smoke(ap)
    a = ap.parse_args()
    if a.smoke:
        global FRAMES, WIDTH, HEIGHT
        FRAMES, WIDTH, HEIGHT = 3, 64, 48
        a.out = str(Path(harness.smoke_results()) / "video_clips")
    out = Path(a.out)
    for name, make in (("pan", pan_frames), ("zoom", zoom_frames)):
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        frames = make(im.load_image(SHARED / PHOTOS[name]))
        for t, f in enumerate(frames):
            im.save_image(folder / f"{t + 1:03d}.png", f)
        if name == "pan":
            videoio.encode(out / "pan.mp4", iter(frames), Fraction(24))
        print(f"{folder}: {len(frames)} frames of {WIDTH}x{HEIGHT}")


if __name__ == "__main__":
    main()
