"""Training data sources and the seeded batch stream (nst_jax.data)."""

import numpy as np
import pytest
from PIL import Image

from nst_jax.data import ArraySource, Batches, ImageFolder, open_source, resize_short_side
from nst_jax.errors import NSTError


def _write(path, h, w, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), value, np.uint8)).save(path)


@pytest.fixture()
def folder(tmp_path):
    root = tmp_path / "imgs"
    for i in range(5):
        _write(root / f"a{i}.png", 40 + i, 50, 10 * i + 5)
    _write(root / "sub" / "deeper" / "b.jpg", 60, 30, 200)
    (root / "broken.jpg").write_text("not an image")
    (root / "truncated.png").write_bytes((root / "a0.png").read_bytes()[:60])
    (root / "notes.txt").write_text("ignored: not an image extension")
    return root


def test_image_folder_recursive_and_sorted(folder):
    src = ImageFolder(folder)
    names = [p.relative_to(folder).as_posix() for p in src.files]
    assert names == sorted(names) and len(names) == 8  # 5 + nested + 2 unreadable, no .txt
    assert "sub/deeper/b.jpg" in names
    assert ImageFolder(folder, recursive=False).files != src.files


def test_unreadable_files_are_skipped_and_counted(folder):
    src = ImageFolder(folder)
    stream = Batches(src, batch_size=4, crop=16, resize=16, seed=3, prefetch=1)
    try:
        batches = [next(stream) for _ in range(4)]  # 16 positions: two epochs of 8 files
    finally:
        stream.close()
    assert all(b.shape == (4, 16, 16, 3) and b.dtype == np.uint8 for b in batches)
    assert stream.skipped == 2
    assert sorted(src.files[i].name for i in stream.skipped_records) == ["broken.jpg", "truncated.png"]


def test_order_is_a_pure_function_of_seed_and_step(folder):
    src = ImageFolder(folder)
    a = Batches(src, 3, crop=24, resize=30, seed=7, prefetch=1)
    try:
        first = [next(a) for _ in range(5)]
    finally:
        a.close()
    resumed = Batches(src, 3, crop=24, resize=30, seed=7, start_step=3, prefetch=1)
    try:
        np.testing.assert_array_equal(next(resumed), first[3])
        np.testing.assert_array_equal(next(resumed), first[4])
    finally:
        resumed.close()
    other = Batches(src, 3, crop=24, resize=30, seed=8, prefetch=1)
    try:
        assert any(not np.array_equal(next(other), f) for f in first)
    finally:
        other.close()


def test_process_shards_tile_the_global_batch(folder):
    src = ImageFolder(folder)
    full = Batches(src, 4, crop=16, resize=20, seed=1, prefetch=1)
    halves = [Batches(src, 4, crop=16, resize=20, seed=1, shard=(k, 2), prefetch=1) for k in range(2)]
    try:
        for _ in range(3):
            np.testing.assert_array_equal(next(full), np.concatenate([next(h) for h in halves]))
    finally:
        full.close()
        for h in halves:
            h.close()
    with pytest.raises(NSTError, match="divisible"):
        Batches(src, 3, crop=16, resize=20, shard=(0, 2))


def test_epoch_visits_every_image_once():
    images = [np.full((8, 8, 3), i / 10, np.float32) for i in range(10)]
    stream = Batches(ArraySource(images), 5, crop=8, resize=8, seed=0, prefetch=1)
    try:
        seen = np.concatenate([next(stream), next(stream)])[:, 0, 0, 0]
    finally:
        stream.close()
    assert sorted(np.round(seen / 255 * 10).astype(int)) == list(range(10))


def test_crops_and_short_side_resize():
    img = np.random.default_rng(0).random((30, 90, 3)).astype(np.float32)
    r = resize_short_side(img, 60)
    assert r.shape == (60, 180, 3) and r.dtype == np.uint8
    small = np.random.default_rng(0).random((5, 7, 3)).astype(np.float32)  # upscaled to the crop
    stream = Batches(ArraySource([small]), 2, crop=32, resize=40, prefetch=1)
    try:
        assert next(stream).shape == (2, 32, 32, 3)
    finally:
        stream.close()


def test_image_folder_excludes_held_back_names(folder):
    src = ImageFolder(folder, exclude=("a1.png", "b.*"))
    names = sorted(p.name for p in src.files)
    assert "a1.png" not in names and "b.jpg" not in names and "a0.png" in names
    assert len(src) == len(ImageFolder(folder)) - 2 and src.excluded == ["a1.png", "b.*"]
    with pytest.raises(NSTError, match="after the exclusions"):
        ImageFolder(folder, exclude=("*",))
    with pytest.raises(NSTError, match="not to TFDS"):
        open_source("tfds:mnist", exclude=("x",))


def test_folder_errors(tmp_path):
    with pytest.raises(NSTError, match="does not exist"):
        ImageFolder(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NSTError, match="no image files"):
        ImageFolder(tmp_path / "empty")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.jpg").write_text("text")
    stream = Batches(ImageFolder(bad), 1, crop=8, resize=8, prefetch=1)
    with pytest.raises(NSTError, match="no readable image"):
        next(stream)
    stream.close()
    with pytest.raises(NSTError, match="at least the crop"):
        Batches(ArraySource([np.zeros((8, 8, 3))]), 1, crop=16, resize=8)


def test_tfds_source_through_tensorflow_datasets(tmp_path):
    """A small dataset built and read through tensorflow-datasets itself (array_record, random access)."""
    tfds = pytest.importorskip("tensorflow_datasets")
    from tests.helpers import build_tiny_tfds

    build_tiny_tfds(tfds, tmp_path, n=6)
    src = open_source("tfds:tiny_images:train", data_dir=tmp_path)
    assert len(src) == 6 and src.name == "tfds:tiny_images:train"
    shapes = sorted(src.load(i).shape for i in range(len(src)))
    assert shapes == [(40 + i, 50, 3) for i in range(6)]
    img = src.load(0)
    assert img.dtype == np.float32 and 0.0 <= img.min() and img.max() <= 1.0
    stream = Batches(src, 4, crop=32, resize=40, seed=0, prefetch=1)
    try:
        assert next(stream).shape == (4, 32, 32, 3)
    finally:
        stream.close()
    with pytest.raises(NSTError, match="not available"):
        open_source("tfds:tiny_images:validation", data_dir=tmp_path)
    with pytest.raises(NSTError, match="not available"):
        open_source("tfds:no_such_dataset_xyz", data_dir=tmp_path)


def test_crops_without_content_are_drawn_again():
    """min_std: no crop flatter than min_std levels in every channel; the white half of an image is avoided,
    a white image replaced by the next one, the stream still a pure function of (seed, step)."""
    rng = np.random.default_rng(0)
    half = rng.random((32, 64, 3)).astype(np.float32)
    half[:, 32:] = 1.0                                           # the right half white
    white = np.ones((32, 32, 3), np.float32)
    src = ArraySource([half, white, rng.random((32, 32, 3)).astype(np.float32)])

    def crops(min_std, steps=8):
        stream = Batches(src, 3, crop=16, resize=32, seed=5, prefetch=1, min_std=min_std)
        try:
            return np.concatenate([next(stream) for _ in range(steps)])
        finally:
            stream.close()

    def flat(batch):
        return batch.reshape(len(batch), -1, 3).std(axis=1).max(axis=1) < 1.0

    assert flat(crops(0.0)).any()                                # the default takes crops as they fall
    kept = crops(1.0)
    assert not flat(kept).any()
    np.testing.assert_array_equal(kept, crops(1.0))
    stream = Batches(ArraySource([white, white * 0.5]), 1, crop=16, resize=32, prefetch=1, min_std=1.0)
    with pytest.raises(NSTError, match="crop with content"):
        next(stream)
    stream.close()
