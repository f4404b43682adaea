"""The command line: happy path, bad input (one line, non-zero, no traceback, nothing clobbered),
Ctrl-C.  Run as real subprocesses, as a user would."""

import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest
from PIL import Image

from .helpers import PY, assert_clean_error, gradient, png_bomb, run, run_here, write_variants


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    Image.fromarray((gradient(40, 40) * 255).astype(np.uint8)).save(d / "content.png")
    yy, xx = np.mgrid[0:40, 0:40] / 40.0
    stripes = np.stack([np.sin(25 * (xx + yy)) * 0.5 + 0.5, xx, 1 - yy], -1)
    Image.fromarray((stripes * 255).astype(np.uint8)).save(d / "style.png")
    (d / "text.jpg").write_text("not an image\n")
    (d / "empty.jpg").write_bytes(b"")
    full = d / "full.jpg"
    Image.fromarray((gradient(64, 64) * 255).astype(np.uint8)).save(full)
    (d / "truncated.jpg").write_bytes(full.read_bytes()[:300])
    png_bomb(d / "bomb.png")
    (d / "existing.png").write_bytes(b"keep me")
    return d


def test_stylize_writes_image_and_report(files):
    out, rep = files / "out.png", files / "report.json"
    r = run("stylize", files / "content.png", files / "style.png", "-o", out, "--size", "32",
            "--iters", "4", "--report", rep, "--quiet")
    assert r.returncode == 0, r.stderr
    assert Image.open(out).size == (32, 32)
    report = json.loads(rep.read_text())
    for key in ("seconds", "compile_seconds", "optimize_seconds", "evaluations", "terms", "device",
                "versions", "width", "height"):
        assert key in report, key
    assert report["iterations_per_scale"] == 4 and report["evaluations"] >= 4


@pytest.mark.parametrize("kind", ["grey", "rgba", "grey16", "cmyk", "palette"])
def test_awkward_images_work(files, tmp_path, kind):
    src = write_variants(tmp_path)[kind]
    out = tmp_path / "o.png"
    # one kind as a real process, the others in this one (its compiled program reused)
    r = (run if kind == "cmyk" else run_here)("stylize", src, files / "style.png", "-o", out, "--size", "32",
                                               "--iters", "2", "--quiet")
    assert r.returncode == 0, r.stderr
    assert Image.open(out).mode == "RGB"


@pytest.mark.parametrize("name,match", [
    ("missing.jpg", "does not exist"),
    ("empty.jpg", "is empty"),
    ("text.jpg", "not an image"),
    ("truncated.jpg", "truncated"),
    ("bomb.png", "enormous"),
])
def test_bad_content_images(files, name, match):
    existing = files / "existing.png"
    command = run if name == "bomb.png" else run_here  # one case as a real process
    r = command("stylize", files / name, files / "style.png", "-o", existing, "--size", "32", "--iters", "2")
    assert_clean_error(r, match)
    assert existing.read_bytes() == b"keep me"


def test_bad_style_output_and_weights(files, tmp_path):
    c, s = files / "content.png", files / "style.png"
    assert_clean_error(run("stylize", c, files / "text.jpg", "-o", tmp_path / "o.png"), "not an image")
    assert_clean_error(run_here("stylize", c, s, "-o", tmp_path / "o.xyz"), "format")
    assert_clean_error(run_here("stylize", c, s, "-o", tmp_path / "no" / "o.png"), "does not exist")
    assert_clean_error(run_here("stylize", c, s, "-o", tmp_path / "o.png", "--weights", files / "text.jpg"),
                       "not a weights file")
    assert_clean_error(run_here("stylize", c, s, "-o", tmp_path / "o.png", "--style-layers", "relu9_1"),
                       "unknown VGG-19 layer")
    assert_clean_error(run_here("stylize", c, s, "-o", tmp_path / "o.png", "--size", "8"), "smaller than")
    assert_clean_error(run_here("stylize", c, s, "-o", tmp_path / "o.png", "--iters", "zero"), "integer")
    assert_clean_error(run_here("stylize", c, s, "-o", tmp_path / "o.png", "--optimizer", "adam",
                           "--history", "5"), "does not take history")
    assert_clean_error(run_here("stylize", c, s, "-o", tmp_path / "o.png", "--learning-rate", "0.1"),
                       "does not take learning rate")
    assert_clean_error(run_here("stylize", c, s, "-o", tmp_path / "o.png", "--devices", "64"),
                       "64 devices asked for")
    assert not (tmp_path / "o.png").exists()


@pytest.mark.slow
def test_ctrl_c_saves_the_current_iterate(files, tmp_path):
    out = tmp_path / "interrupted.png"
    p = subprocess.Popen(PY + ["stylize", str(files / "content.png"), str(files / "style.png"), "-o",
                               str(out), "--size", "32", "--iters", "100000"],
                         stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.time() + 300
    for line in p.stderr:  # wait until the optimisation is running
        if "loss" in line or time.time() > deadline:
            break
    p.send_signal(signal.SIGINT)
    rest = p.stderr.read()
    assert p.wait(timeout=120) == 130
    assert "interrupted; saved" in rest and "Traceback" not in rest
    assert "(iteration " in rest and "/100000)" in rest and "?" not in rest, rest
    assert Image.open(out).size == (32, 32)
