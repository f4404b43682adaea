"""Training data: image folders and TensorFlow Datasets -> NumPy batches of random crops.

A *source* is a random-access collection of images (``len(source)``, ``source.load(i)`` -> float32 RGB
in [0, 1] or ``None`` when the record cannot be read).  :class:`Batches` turns a source into an endless,
seeded stream of ``(batch, crop, crop, 3)`` uint8 batches:

* The order is a pure function of ``(seed, step)``: epoch ``e`` visits the images in the permutation
  ``default_rng([seed, e])``, and step ``s`` takes the next ``batch_size`` positions.  Resuming at step
  ``s`` therefore reproduces the same data exactly, with no iterator state to save, and every host of a
  multi-host run can compute its own share without talking to the others.
* Each image is resized so that its shorter side is ``resize`` (keeping the aspect ratio) and a random
  ``crop x crop`` window is taken, the offsets drawn from ``default_rng([seed, e, position])``.
  (Huang & Belongie: shorter side 512, random 256 crops.)
* An unreadable record never stops training: it is replaced by the next readable image of the same
  epoch's permutation, and counted (``Batches.skipped``).
* ``min_std > 0``: a crop without content (its pixels' standard deviation below ``min_std`` 8-bit levels
  in every channel: a white border, an overexposed sky) is drawn again elsewhere in the image, up to
  ``CROP_TRIES`` times, then replaced by the next image.  An instance-normalised network (the fast
  networks) cannot train on one: every normalisation sees zero variance and multiplies the gradient by
  ``1 / sqrt(eps)``, and after a dozen of them it overflows.
* Batches are assembled in a background thread ``prefetch`` steps ahead of the training step.
"""

from __future__ import annotations

import os
import queue
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from . import image as _image
from .errors import NSTError

CROP_TRIES = 8  # positions tried in one image before a crop without content is replaced by the next image
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm"})


class ImageFolder:
    """Every image file under ``root`` (recursively by default), in sorted path order, except those whose
    file name matches one of the glob patterns in ``exclude`` (images held back for evaluation)."""

    def __init__(self, root: str | os.PathLike, recursive: bool = True, exclude: tuple[str, ...] = ()):
        import fnmatch

        self.root = Path(root)
        if not self.root.is_dir():
            raise NSTError(f"image folder {self.root} does not exist or is not a directory")
        pattern = "**/*" if recursive else "*"
        self.files = sorted(p for p in self.root.glob(pattern)
                            if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
                            and not any(fnmatch.fnmatch(p.name, x) for x in exclude))
        if not self.files:
            raise NSTError(f"no image files ({', '.join(sorted(IMAGE_EXTENSIONS))}) found in {self.root}"
                           + (" after the exclusions" if exclude else ""))
        self.name = str(self.root)
        self.excluded = sorted(exclude)

    def __len__(self) -> int:
        return len(self.files)

    def load(self, i: int) -> np.ndarray | None:
        try:
            return _image.load_image(self.files[i])
        except (NSTError, OSError, ValueError):
            return None


class TFDSImages:
    """Images of a TensorFlow Datasets split, read by random access (``tfds.data_source``).

    The dataset must have been prepared (``tfds build NAME`` or ``tfds.builder(NAME).download_and_prepare()``)
    in the ``array_record`` file format, which is what random access needs; ``data_dir`` is TFDS's own
    (default ``~/tensorflow_datasets``).  ``name`` is TFDS's, e.g. ``coco/2017``.
    """

    def __init__(self, name: str, split: str = "train", data_dir: str | os.PathLike | None = None,
                 image_key: str = "image"):
        try:
            import tensorflow_datasets as tfds
        except ImportError as e:
            raise NSTError("TFDS sources need tensorflow-datasets: pip install 'nst_jax[tfds]'") from e
        try:
            self._source = tfds.data_source(name, split=split,
                                            data_dir=None if data_dir is None else str(data_dir),
                                            download=False)
        except Exception as e:  # TFDS raises many types; all mean "not available as asked"
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise NSTError(f"TFDS dataset {name!r} split {split!r} is not available for random access "
                           f"({first}); prepare it with `tfds build {name.split('/')[0]} "
                           "--file_format=array_record`") from e
        self.image_key = image_key
        self.name = f"tfds:{name}:{split}"
        if len(self._source) == 0:
            raise NSTError(f"TFDS dataset {name!r} split {split!r} is empty")

    def __len__(self) -> int:
        return len(self._source)

    def load(self, i: int) -> np.ndarray | None:
        try:
            record = self._source[int(i)]
            img = np.asarray(record[self.image_key])
        except Exception:  # a damaged record is skipped like an unreadable file
            return None
        if img.ndim == 2:
            img = img[..., None]
        if img.ndim != 3 or img.shape[-1] not in (1, 3, 4) or min(img.shape[:2]) < 1:
            return None
        if img.shape[-1] == 1:
            img = np.repeat(img, 3, axis=-1)
        img = img[..., :3]
        scale = 65535.0 if img.dtype == np.uint16 else 255.0 if img.dtype == np.uint8 else 1.0
        return np.clip(img.astype(np.float32) / scale, 0.0, 1.0)


class ArraySource:
    """Images already in memory: a sequence of ``(H, W, 3)`` float arrays in [0, 1] (``None`` entries are
    treated as unreadable records)."""

    def __init__(self, images, name: str = "arrays", delay: float = 0.0):
        self.images = list(images)
        if not self.images:
            raise NSTError("an ArraySource needs at least one image")
        self.name, self.delay = name, delay

    def __len__(self) -> int:
        return len(self.images)

    def load(self, i: int) -> np.ndarray | None:
        if self.delay:
            import time
            time.sleep(self.delay)
        img = self.images[i]
        return None if img is None else np.asarray(img, np.float32)


def open_source(spec: str | os.PathLike, data_dir: str | os.PathLike | None = None,
                exclude: tuple[str, ...] = ()):
    """``tfds:NAME[:SPLIT]`` for a TFDS dataset, anything else is an image folder (without the files whose
    names match the glob patterns ``exclude``)."""
    text = str(spec)
    if text.startswith("tfds:"):
        if exclude:
            raise NSTError("--exclude applies to image folders, not to TFDS datasets")
        parts = text[5:].split(":")
        return TFDSImages(parts[0], parts[1] if len(parts) > 1 else "train", data_dir=data_dir)
    return ImageFolder(text, exclude=tuple(exclude))


def resize_short_side(img: np.ndarray, short: int) -> np.ndarray:
    """Resize (Lanczos) so that the shorter side is ``short``; returns uint8."""
    h, w = img.shape[:2]
    s = short / min(h, w)
    shape = (max(short, round(h * s)), max(short, round(w * s)))
    u8 = _image.to_uint8(img)
    if shape == (h, w):
        return u8
    return np.asarray(Image.fromarray(u8).resize((shape[1], shape[0]), Image.LANCZOS))


def check_crop(crop: int, resize: int) -> None:
    """Refuse a crop larger than the resized images (before any training work or output)."""
    if crop < 1 or resize < crop:
        raise NSTError(f"resize ({resize}) must be at least the crop size ({crop}), and both positive")


class Batches:
    """Seeded stream of random-crop batches from a source; see the module docstring.

    ``shard=(index, count)`` gives this process the ``index``-th of ``count`` equal slices of every global
    batch (multi-host data parallelism); ``batch_size`` is the global batch.
    """

    def __init__(self, source, batch_size: int, crop: int = 256, resize: int = 512, seed: int = 0,
                 start_step: int = 0, shard: tuple[int, int] = (0, 1), prefetch: int = 2,
                 cache: bool = False, min_std: float = 0.0):
        index, count = shard
        if batch_size % count:
            raise NSTError(f"batch size {batch_size} is not divisible by the number of processes {count}")
        check_crop(crop, resize)
        self.source, self.batch_size, self.seed = source, batch_size, seed
        self.crop, self.resize, self.min_std = crop, resize, float(min_std)
        self.local = batch_size // count
        self.offset = index * self.local
        self.step = start_step
        self.skipped_records: set[int] = set()
        self._perms: dict[int, np.ndarray] = {}
        self._cache: dict[int, np.ndarray] | None = {} if cache else None
        self._lock = threading.Lock()
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, prefetch))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, daemon=True)
        self._thread.start()

    @property
    def skipped(self) -> int:
        """Number of distinct unreadable records met so far."""
        return len(self.skipped_records)

    def _perm(self, epoch: int) -> np.ndarray:
        with self._lock:
            perm = self._perms.get(epoch)
            if perm is None:
                perm = np.random.default_rng([self.seed, epoch]).permutation(len(self.source))
                self._perms = {epoch: perm, **{e: p for e, p in self._perms.items() if e >= epoch - 1}}
            return perm

    def _resized(self, i: int) -> np.ndarray | None:
        if self._cache is not None and i in self._cache:
            return self._cache[i]
        img = self.source.load(i)
        out = None if img is None else resize_short_side(img, self.resize)
        if out is None:
            with self._lock:
                self.skipped_records.add(int(i))
        elif self._cache is not None:
            self._cache[i] = out
        return out

    def example(self, position: int) -> np.ndarray:
        """The uint8 crop at global stream position ``position``."""
        n = len(self.source)
        epoch, k = divmod(position, n)
        perm = self._perm(epoch)
        rng = np.random.default_rng([self.seed, epoch, k])
        readable = False
        for j in range(n):  # an unreadable record (or one without content) is replaced by the next image
            img = self._resized(perm[(k + j) % n])
            if img is None:
                continue
            readable = True
            for _ in range(CROP_TRIES if self.min_std > 0 else 1):
                y = int(rng.integers(0, img.shape[0] - self.crop + 1))
                x = int(rng.integers(0, img.shape[1] - self.crop + 1))
                crop = img[y:y + self.crop, x:x + self.crop]
                if self.min_std <= 0 or crop.reshape(-1, crop.shape[-1]).std(axis=0).max() >= self.min_std:
                    return crop
        if readable:
            raise NSTError(f"no image in {self.source.name} has a {self.crop} px crop with content "
                           f"(pixel standard deviation at least {self.min_std:g} levels)")
        raise NSTError(f"no readable image in {self.source.name}")

    def batch(self, step: int) -> np.ndarray:
        """This process's slice of global batch ``step`` (uint8, NHWC)."""
        first = step * self.batch_size + self.offset
        return np.stack([self.example(first + j) for j in range(self.local)])

    def _produce(self):
        step = self.step
        while not self._stop.is_set():
            try:
                item = (step, self.batch(step))
            except BaseException as e:  # hand the error to the consumer
                item = (step, e)
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if isinstance(item[1], BaseException):
                return
            step += 1

    def __iter__(self):
        return self

    def __next__(self) -> np.ndarray:
        step, item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        self.step = step + 1
        return item

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Zip:
    """Several :class:`Batches` streams stepped together: each item a dict of their batches by name."""

    def __init__(self, **streams):
        self.streams = streams

    def __iter__(self):
        return self

    def __next__(self):
        return {k: next(s) for k, s in self.streams.items()}

    @property
    def skipped(self) -> int:
        return sum(s.skipped for s in self.streams.values())

    def close(self):
        for s in self.streams.values():
            s.close()
