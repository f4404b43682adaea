"""`nst-jax adain` and `nst-jax train adain` as real subprocesses: options, bad input, Ctrl-C."""

import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest
from PIL import Image

from nst_jax import adain as A

from .helpers import gradient, png_bomb
from .test_cli import PY, assert_clean_error, run


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    import jax

    from nst_jax.adain import init_decoder, save_decoder

    d = tmp_path_factory.mktemp("adain_cli")
    Image.fromarray((gradient(48, 40) * 255).astype(np.uint8)).save(d / "content.png")
    yy, xx = np.mgrid[0:40, 0:40] / 40.0
    Image.fromarray((np.stack([np.sin(25 * (xx + yy)) * .5 + .5, xx, 1 - yy], -1) * 255).astype(np.uint8)) \
        .save(d / "style.png")
    Image.fromarray((np.stack([xx, xx, yy], -1) * 255).astype(np.uint8)).save(d / "style2.png")
    mask = np.zeros((48, 40), np.uint8)
    mask[:, :20] = 255
    Image.fromarray(mask).save(d / "mask.png")
    (d / "text.jpg").write_text("not an image\n")
    (d / "truncated.png").write_bytes((d / "content.png").read_bytes()[:100])
    png_bomb(d / "bomb.png")
    (d / "existing.png").write_bytes(b"keep me")
    save_decoder(d / "decoder.npz", init_decoder(jax.random.key(0)))
    (d / "notdecoder.npz").write_bytes(b"PK\x03\x04 broken zip")
    # a tiny training set: a nested folder with an unreadable file in it
    for k in range(3):
        sub = d / "photos" / ("a" if k else "b")
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray((np.random.default_rng(k).random((40, 44, 3)) * 255).astype(np.uint8)) \
            .save(sub / f"{k}.jpg")
    (d / "photos" / "broken.jpg").write_text("no")
    (d / "paintings").mkdir()
    for k in range(2):
        Image.fromarray((np.random.default_rng(9 + k).random((36, 36, 3)) ** 2 * 255).astype(np.uint8)) \
            .save(d / "paintings" / f"{k}.png")
    return d


def test_adain_options(files):
    out, rep = files / "out.png", files / "rep.json"
    dec = files / "decoder.npz"
    r = run("adain", files / "content.png", files / "style.png", files / "style2.png", "-o", out,
            "--decoder", dec, "--size", "none", "--style-blend", "1,3", "--alpha", "0.5",
            "--preserve-color", "histogram", "--report", rep, "--quiet")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert Image.open(out).size == (40, 48)
    report = json.loads(rep.read_text())
    assert report["style_blend"] == [0.25, 0.75] and report["alpha"] == 0.5
    assert (report["method"], report["height"], report["width"]) == ("adain", 48, 40)
    r = run("adain", files / "content.png", files / "style.png", files / "style2.png", "-o", out,
            "--decoder", dec, "--size", "32", "--mask", files / "mask.png", "--preserve-color", "luminance",
            "--tile", "16")
    assert r.returncode == 0, r.stderr
    assert Image.open(out).size == (27, 32) and "saved" in r.stderr


@pytest.mark.parametrize("args,match", [
    (["missing.png", "style.png"], "does not exist"),
    (["text.jpg", "style.png"], "text.jpg"),
    (["truncated.png", "style.png"], "damaged or truncated"),
    (["bomb.png", "style.png"], "bomb.png"),
    (["content.png", "style.png", "--mask", "mask.png"], "exactly two"),
    (["content.png", "style.png", "--decoder", "missing.npz"], "does not exist"),
    (["content.png", "style.png", "--decoder", "notdecoder.npz"], "not a readable"),
    (["content.png", "style.png", "--style-blend", "1,2"], "blend weights"),
    (["content.png", "style.png", "--tile", "huge"], "band height"),
])
def test_adain_bad_input(files, args, match):
    argv = [files / a if a.endswith((".png", ".jpg", ".npz")) else a for a in args]
    if "--decoder" not in args:
        argv += ["--decoder", files / "decoder.npz"]
    r = run("adain", *argv, "-o", files / "existing.png")
    assert_clean_error(r, match)
    assert (files / "existing.png").read_bytes() == b"keep me"


def test_adain_argument_errors(files):
    r = run("adain", files / "content.png", files / "style.png", "-o", files / "x.png", "--alpha", "1.5")
    assert r.returncode == 2 and "alpha must be in [0, 1]" in r.stderr and "Traceback" not in r.stderr


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
    records = [json.loads(line) for line in (ck / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in records] == [1, 2, 3]
    r = run("adain", files / "content.png", files / "style.png", "-o", tmp_path / "o.png",
            "--decoder", ck / "decoder.npz", "--quiet")
    assert r.returncode == 0, r.stderr


def test_reconstruction_warm_up_then_adain_from_it(files, tmp_path):
    """The warm-up needs no style images; the AdaIN run starts from its decoder and counts both runs."""
    small = ["--batch-size", "2", "--crop", "32", "--resize", "36", "--log-every", "1"]
    r = run("train", "adain", "--objective", "reconstruction", "--content-dir", files / "photos",
            "--ckpt-dir", tmp_path / "warm", "--steps", "2", *small)
    assert r.returncode == 0, r.stderr
    r = run("train", "adain", "--content-dir", files / "photos", "--style-dir", files / "paintings",
            "--ckpt-dir", tmp_path / "ft", "--steps", "1", "--init-from", tmp_path / "warm" / "decoder.npz",
            "--warmup", "10", *small)
    assert r.returncode == 0, r.stderr
    _, meta = A.load_decoder(tmp_path / "ft" / "decoder.npz")
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
    r = run("train", "adain", "--content-dir", tmp_path / "nope", "--style-dir", files / "paintings",
            "--ckpt-dir", tmp_path / "c", "--steps", "1")
    assert_clean_error(r, "does not exist")
    r = run("train", "adain", "--tfds", "no_such_dataset_xyz", "--tfds-data-dir", tmp_path,
            "--style-dir", files / "paintings", "--ckpt-dir", tmp_path / "c", "--steps", "1")
    assert_clean_error(r, "not available")
    r = run("train", "adain", "--content-dir", files / "photos", "--style-dir", files / "paintings",
            "--ckpt-dir", tmp_path / "c", "--steps", "1", "--crop", "64", "--resize", "32")
    assert_clean_error(r, "must be at least the crop size")
    assert not (tmp_path / "c").exists()  # nothing written before the error


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


def test_train_from_tfds_content(files, tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    from .helpers import build_tiny_tfds

    build_tiny_tfds(tfds, tmp_path / "tfds", n=4)
    r = run("train", "adain", "--tfds", "tiny_images:train", "--tfds-data-dir", tmp_path / "tfds",
            "--style-dir", files / "paintings", "--ckpt-dir", tmp_path / "c", "--steps", "1",
            "--batch-size", "2", "--crop", "32", "--resize", "40")
    assert r.returncode == 0, r.stderr
    meta = json.loads(str(np.load(tmp_path / "c" / "decoder.npz")["__meta__"]))
    assert meta["task_config"]["content"] == "tfds:tiny_images:train"
