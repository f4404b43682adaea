"""`nst-jax train adain|fast` as real subprocesses: training, resume, --init-from, bad input, Ctrl-C."""

import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest
from PIL import Image

from nst_jax import adain as A
from nst_jax import feedforward as F

from .helpers import PY, assert_clean_error, build_tiny_tfds, run, run_here


@pytest.fixture(scope="module")
def files(adain_cli_files):
    return adain_cli_files


@pytest.mark.slow
def test_train_adain_cli_then_resume_and_use(files, tmp_path):
    ck = tmp_path / "run"
    common = ["train", "adain", "--content-dir", files / "photos", "--style-dir", files / "paintings",
              "--ckpt-dir", ck, "--batch-size", "2", "--crop", "32", "--resize", "36", "--log-every", "1",
              "--ckpt-every", "2"]
    r = run(*common, "--steps", "2")
    assert r.returncode == 0, r.stderr
    assert "step 2/2" in r.stderr and "skipped 1" in r.stderr  # the broken file is counted, not fatal
    assert (ck / "decoder.npz").exists() and (ck / "loss_curve.png").exists()
    r = run(*common, "--steps", "3")
    assert_clean_error(r, "already holds checkpoints")
    r = run(*common, "--steps", "3", "--resume")
    assert r.returncode == 0, r.stderr
    assert "resumed from step 2" in r.stderr
    def strict(text):  # JSON has no NaN: Python's json would read the bare token, other readers fail
        raise ValueError(f"not JSON: {text}")

    lines = (ck / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line, parse_constant=strict) for line in lines]
    assert [x["step"] for x in records] == [1, 2, 3]
    assert records[0]["images_per_second"] is None and records[1]["images_per_second"] > 0  # 1st compiles
    assert "nan img/s" not in r.stderr
    r = run("adain", files / "content.png", files / "style.png", "-o", tmp_path / "o.png",
            "--decoder", ck / "decoder.npz", "--quiet")
    assert r.returncode == 0, r.stderr


@pytest.mark.slow
def test_reconstruction_warm_up_then_adain_from_it(files, tmp_path):
    """The warm-up needs no style images; the AdaIN run starts from its decoder and counts both runs."""
    small = ["--batch-size", "2", "--crop", "32", "--resize", "36", "--log-every", "1"]
    r = run("train", "adain", "--objective", "reconstruction", "--content-dir", files / "photos",
            "--ckpt-dir", tmp_path / "warm", "--steps", "2", *small)
    assert r.returncode == 0, r.stderr
    r = run("train", "adain", "--content-dir", files / "photos", "--style-dir", files / "paintings",
            "--ckpt-dir", tmp_path / "ft", "--steps", "1", "--init-from", tmp_path / "warm" / "decoder.npz",
            "--warmup", "10", "--upsample", "bilinear", *small)
    assert r.returncode == 0, r.stderr
    _, meta = A.load_decoder(tmp_path / "ft" / "decoder.npz")
    assert A.upsampling(meta) == "bilinear"  # a nearest-neighbour decoder retrained as a bilinear one
    assert meta["cumulative"]["steps"] == 3 and meta["cumulative"]["images"] == 6
    assert [x["task_config"].get("objective", "adain") for x in meta["cumulative"]["runs"]] == \
        ["reconstruction", "adain"]
    r = run("train", "adain", "--content-dir", files / "photos", "--ckpt-dir", tmp_path / "x", "--steps", "1")
    assert_clean_error(r, "needs --style-dir")
    r = run("train", "adain", "--content-dir", files / "photos", "--style-dir", files / "paintings",
            "--ckpt-dir", tmp_path / "x", "--steps", "1", "--init-from", files / "style.png")
    assert_clean_error(r, "not a readable")
    assert not (tmp_path / "x").exists()


def test_train_adain_bad_input(files, tmp_path):
    r = run("train", "adain", "--style-dir", files / "paintings", "--ckpt-dir", tmp_path / "c",
            "--steps", "1")
    assert_clean_error(r, "exactly one content source")
    r = run_here("train", "adain", "--content-dir", tmp_path / "nope", "--style-dir", files / "paintings",
                 "--ckpt-dir", tmp_path / "c", "--steps", "1")
    assert_clean_error(r, "does not exist")
    r = run_here("train", "adain", "--tfds", "no_such_dataset_xyz", "--tfds-data-dir", tmp_path,
                 "--style-dir", files / "paintings", "--ckpt-dir", tmp_path / "c", "--steps", "1")
    assert_clean_error(r, "not available")
    r = run_here("train", "adain", "--content-dir", files / "photos", "--style-dir", files / "paintings",
                 "--ckpt-dir", tmp_path / "c", "--steps", "1", "--crop", "64", "--resize", "32")
    assert_clean_error(r, "must be at least the crop size")
    r = run_here("train", "adain", "--content-dir", files / "photos", "--style-dir", files / "paintings",
                 "--ckpt-dir", tmp_path / "c", "--steps", "1", "--crop", "32", "--clip-grad-norm", "-1")
    assert_clean_error(r, "clipping norm must be positive")
    assert not (tmp_path / "c").exists()  # nothing written before the error


@pytest.mark.slow
def test_train_ctrl_c_saves_a_checkpoint(files, tmp_path):
    ck = tmp_path / "int"
    proc = subprocess.Popen(PY + [str(a) for a in [
        "train", "adain", "--content-dir", files / "photos", "--style-dir", files / "paintings",
        "--ckpt-dir", ck, "--batch-size", "2", "--crop", "32", "--resize", "36", "--log-every", "1",
        "--ckpt-every", "1000", "--steps", "100000"]], stderr=subprocess.PIPE, text=True,
        env=dict(os.environ))
    deadline = time.time() + 300
    seen = ""
    while time.time() < deadline:
        line = proc.stderr.readline()
        seen += line
        if line.startswith("step 2/"):
            break
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=120)[1]
    assert proc.returncode == 130, seen + rest
    assert "checkpoint saved at step" in rest and "Traceback" not in rest
    steps = [int(p.name) for p in (ck / "checkpoints").iterdir() if p.name.isdigit()]
    assert steps and 2 <= max(steps) < 100000


@pytest.mark.slow
def test_train_from_tfds_content(files, tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")

    build_tiny_tfds(tfds, tmp_path / "tfds", n=4)
    r = run("train", "adain", "--tfds", "tiny_images:train", "--tfds-data-dir", tmp_path / "tfds",
            "--style-dir", files / "paintings", "--ckpt-dir", tmp_path / "c", "--steps", "1",
            "--batch-size", "2", "--crop", "32", "--resize", "40")
    assert r.returncode == 0, r.stderr
    meta = json.loads(str(np.load(tmp_path / "c" / "decoder.npz")["__meta__"]))
    assert meta["task_config"]["content"] == "tfds:tiny_images:train"


@pytest.mark.slow
def test_train_fast_cli_and_resume(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for k in range(3):
        Image.fromarray((np.random.default_rng(k).random((36, 40, 3)) * 255).astype(np.uint8)) \
            .save(photos / f"{k}.jpg")
    Image.fromarray((np.random.default_rng(9).random((40, 40, 3)) ** 2 * 255).astype(np.uint8)) \
        .save(tmp_path / "style.png")
    common = ["train", "fast", "--style", tmp_path / "style.png", "--content-dir", photos, "--ckpt-dir",
              tmp_path / "run", "--batch-size", "2", "--crop", "32", "--resize", "32", "--style-size", "40",
              "--log-every", "1", "--ckpt-every", "2"]
    r = run(*common, "--steps", "2")
    assert r.returncode == 0, r.stderr
    r = run(*common, "--steps", "3", "--resume")
    assert r.returncode == 0, r.stderr
    assert "resumed from step 2" in r.stderr
    params, meta = F.load_model(tmp_path / "run" / "model.npz")
    assert meta["step"] == 3 and meta["task_config"]["style"] == "style"
    # training that accumulates: a new run from the exported network, with a learning-rate warm-up;
    # its first step uses lr / warmup, and the cumulative record counts both runs
    more = ["train", "fast", "--style", tmp_path / "style.png", "--content-dir", photos, "--ckpt-dir",
            tmp_path / "run2", "--batch-size", "2", "--crop", "32", "--resize", "32", "--style-size", "40",
            "--steps", "2", "--warmup", "4", "--exclude", "0.jpg", "--style-norm", "photos",
            "--init-from", tmp_path / "run" / "model.npz"]
    r = run(*more)
    assert r.returncode == 0, r.stderr
    _, meta2 = F.load_model(tmp_path / "run2" / "model.npz")
    cum = meta2["cumulative"]
    assert cum["steps"] == 5 and cum["images"] == 10 and len(cum["runs"]) == 2
    assert all(r["machine"] for r in cum["runs"]) and cum["runs"][1]["platform"] == "cpu"
    assert cum["wall_seconds"] > meta["wall_seconds"]
    assert meta2["task_config"]["excluded"] == ["0.jpg"]
    assert meta2["task_config"]["style_norm"] == "photos" and meta2["task_config"]["style_norm_value"] > 0
    for bad, message in ((["--init-from", tmp_path / "nope.npz"], "does not exist"),
                         (["--init-from", tmp_path / "style.png"], "not a readable"),
                         (["--content-layers", "relu9_9"], "unknown content layer"),
                         (["--warmup", "-1"], "warm-up"),
                         (["--exclude", "*.jpg"], "after the exclusions")):
        r = run_here("train", "fast", "--style", tmp_path / "style.png", "--content-dir", photos,
                     "--ckpt-dir", tmp_path / "bad", "--steps", "1", *bad)
        assert_clean_error(r, message)
        assert not (tmp_path / "bad" / "model.npz").exists()
    r = run_here("train", "fast", "--style", tmp_path / "missing.png", "--content-dir", photos,
                 "--ckpt-dir", tmp_path / "x", "--steps", "1")
    assert_clean_error(r, "does not exist")


@pytest.mark.slow
def test_train_conditional_fast_network_cli(tmp_path, model_file):
    photos = tmp_path / "photos"
    photos.mkdir()
    for k in range(3):
        Image.fromarray((np.random.default_rng(k).random((36, 40, 3)) * 255).astype(np.uint8)) \
            .save(photos / f"{k}.jpg")
    for k, name in enumerate(("wave", "sky")):
        img = np.random.default_rng(20 + k).random((40, 40, 3)) ** (k + 1)
        Image.fromarray((img * 255).astype(np.uint8)).save(tmp_path / f"{name}.png")
    r = run("train", "fast", "--style", tmp_path / "wave.png", tmp_path / "sky.png", "--content-dir", photos,
            "--ckpt-dir", tmp_path / "run", "--batch-size", "2", "--crop", "32", "--resize", "32",
            "--style-size", "40", "--steps", "2", "--warmup", "2", "--init-from", model_file, model_file)
    assert r.returncode == 0, r.stderr
    params, meta = F.load_model(tmp_path / "run" / "model.npz")
    assert F.num_styles(params) == 2 and meta["styles"] == ["wave", "sky"]
    assert [m["model"] for m in meta["task_config"]["init_from"]] == [str(model_file)] * 2
    photo = photos / "0.jpg"
    for style, tile in ((["sky"], "auto"), (["wave=0.5", "sky=0.5"], "8")):
        r = run("fast", photo, "-o", tmp_path / "out.png", "--model", tmp_path / "run" / "model.npz",
                "--style", *style, "--size", "32", "--tile", tile)
        assert r.returncode == 0, r.stderr
    for bad, match in ((["--model", tmp_path / "run" / "model.npz"], "choose one (style=, --style)"),
                       (["--model", tmp_path / "run" / "model.npz", "--style", "sea"], "no style 'sea'"),
                       (["--model", tmp_path / "run" / "model.npz", "--style", "sky=x"], "NAME=WEIGHT"),
                       (["--model", model_file, "--style", "sky"], "paints one style"),
                       (["--model", model_file, "--tile", "wide"], "band height")):
        r = run_here("fast", photo, "-o", tmp_path / "bad.png", "--size", "32", *bad)
        assert_clean_error(r, match)
        assert not (tmp_path / "bad.png").exists()
    r = run_here("train", "fast", "--style", tmp_path / "wave.png", tmp_path / "sky.png", "--content-dir",
                 photos, "--ckpt-dir", tmp_path / "bad", "--steps", "1", "--init-from", model_file,
                 model_file, model_file)
    assert_clean_error(r, "one one-style network per style")
