"""Pack the AdaIN training data into pieces of at most 64 MiB that travel to a GPU machine, reproducibly from
../shared/datasets.

Photos: imagenet-sample and photos-extra; paintings: styles and styles-extra.  Held back (never packed): the
four paintings of the quality harness (``quality.HELD_BACK_STYLES``) and one in eight of styles-extra and of
photos-extra (``quality.held_back_extra``, by a hash of the file name), so that a decoder trained on the pack
can still be measured on images it never saw (``experiments/adain_generalisation.py``).  Every image is
resized (Lanczos) so that its shorter side is 512 px, or kept at its own size when smaller (never enlarged:
the paper's crops of 256 from a short side of 512 where the photo allows), and stored as JPEG quality 90 in
tar files, files in sorted order, each tar at most ``--piece-mib``; ``manifest.json`` lists every image with
its source folder, size and SHA-256.

    python experiments/pack_training_data.py /tmp/pack                 # -> photos-000.tar ... manifest.json
    python experiments/pack_training_data.py --unpack /tmp/pack DIR    # -> DIR/photos/, DIR/paintings/
    python experiments/pack_training_data.py --smoke   # 2 images a folder (not all), 0.2 MiB pieces, packed
                                                       # and unpacked in a temporary folder

``nst-jax train adain --content-dir DIR/photos --style-dir DIR/paintings --resize 512 --crop 256`` then
trains on it.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path

from PIL import Image
from quality import HELD_BACK_STYLES, held_back_extra

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"
SETS = {"photos": ("imagenet-sample", "photos-extra"), "paintings": ("styles", "styles-extra")}
SHORT = 512
QUALITY = 90
SUFFIXES = (".jpg", ".jpeg", ".png")


def held_back(folder: str, name: str) -> bool:
    if folder == "styles":
        return name in HELD_BACK_STYLES
    if folder in ("styles-extra", "photos-extra"):
        return held_back_extra(name)
    return False


def encode(path: Path) -> tuple[bytes, tuple[int, int]]:
    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        s = SHORT / min(w, h)
        if s < 1:
            im = im.resize((max(SHORT, round(w * s)), max(SHORT, round(h * s))), Image.LANCZOS)
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=QUALITY)
        return buf.getvalue(), im.size


def pack(out: Path, piece: int, per_folder: int | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    manifest = {"short_side": SHORT, "jpeg_quality": QUALITY, "piece_bytes": piece, "files": []}
    for kind, folders in SETS.items():
        n, size, tar = 0, 0, None
        for folder in folders:
            paths = [p for p in sorted((DATA / folder).iterdir()) if p.suffix.lower() in SUFFIXES
                     and not held_back(folder, p.name)]
            for path in paths[:per_folder]:
                data, (w, h) = encode(path)
                if tar is None or size + len(data) + 1024 > piece:
                    if tar is not None:
                        tar.close()
                    tar = tarfile.open(out / f"{kind}-{n:03d}.tar", "w", format=tarfile.PAX_FORMAT)
                    n, size = n + 1, 0
                info = tarfile.TarInfo(f"{kind}/{folder}/{path.stem}.jpg")
                info.size, info.mtime = len(data), 0
                tar.addfile(info, io.BytesIO(data))
                size += len(data) + 1024
                manifest["files"].append({"name": info.name, "piece": Path(tar.name).name, "source": folder,
                                          "width": w, "height": h,
                                          "sha256": hashlib.sha256(data).hexdigest()})
        if tar is not None:
            tar.close()
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    pieces = sorted(out.glob("*.tar"))
    sizes = [p.stat().st_size / 2**20 for p in pieces]
    print(f"{len(manifest['files'])} images in {len(pieces)} pieces, largest {max(sizes):.1f} MiB, "
          f"{sum(sizes):.0f} MiB in all ({out})")


def unpack(src: Path, dst: Path) -> int:
    """Extract every piece there is and check each image against the manifest; returns the count missing."""
    manifest = json.loads((src / "manifest.json").read_text())
    for p in sorted(src.glob("*.tar")):
        with tarfile.open(p) as tar:
            tar.extractall(dst, filter="data")
    missing = 0
    for f in manifest["files"]:
        path = dst / f["name"]
        if not path.exists() or hashlib.sha256(path.read_bytes()).hexdigest() != f["sha256"]:
            missing += 1
    print(f"{len(manifest['files']) - missing} of {len(manifest['files'])} images in {dst}"
          + (f"; {missing} missing or changed (a piece not copied?)" if missing else ""))
    return missing


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="*", help="OUT, or with --unpack: PACK DEST")
    ap.add_argument("--unpack", action="store_true")
    ap.add_argument("--piece-mib", type=float, default=60.0, help="largest piece (MiB)")
    ap.add_argument("--smoke", action="store_true",
                    help="2 images of each folder in pieces of 0.2 MiB, packed and unpacked in a temporary "
                         "folder")
    a = ap.parse_args()
    if a.smoke:
        import tempfile

        tmp = Path(tempfile.mkdtemp(prefix="nst_smoke_pack_"))
        pack(tmp / "pack", int(0.2 * 2**20), per_folder=2)
        sys.exit(1 if unpack(tmp / "pack", tmp / "data") else 0)
    if not a.dirs:
        ap.error("OUT is required")
    if a.unpack:
        if len(a.dirs) != 2:
            sys.exit("--unpack takes PACK DEST")
        sys.exit(1 if unpack(Path(a.dirs[0]), Path(a.dirs[1])) else 0)
    pack(Path(a.dirs[0]), int(a.piece_mib * 2**20))


if __name__ == "__main__":
    main()
