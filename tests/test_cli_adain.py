"""`nst-jax adain` and `nst-jax train adain` as real subprocesses: options, bad input, Ctrl-C."""

import json

import pytest
from PIL import Image

from .helpers import assert_clean_error, run, run_here


@pytest.fixture(scope="module")
def files(adain_cli_files):
    return adain_cli_files


@pytest.mark.slow
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
    # one case as a real process, the others in this one (they fail before any work: tests/helpers.py)
    r = (run if args[0] == "missing.png" else run_here)("adain", *argv, "-o", files / "existing.png")
    assert_clean_error(r, match)
    assert (files / "existing.png").read_bytes() == b"keep me"


def test_adain_argument_errors(files):
    r = run("adain", files / "content.png", files / "style.png", "-o", files / "x.png", "--alpha", "1.5")
    assert r.returncode == 2 and "alpha must be in [0, 1]" in r.stderr and "Traceback" not in r.stderr




def test_adain_refuses_what_it_would_ignore(files, tmp_path):
    """A mask places each style in its own region (no blend); a size is px or 'none', not 0 (a usage
    error: exit 2)."""
    out = tmp_path / "o.png"
    base = ("adain", files / "content.png", files / "style.png", files / "style2.png", "-o", out,
            "--decoder", files / "decoder.npz")
    assert_clean_error(run(*base, "--mask", files / "mask.png", "--style-blend", "1,3"), "no style blend")
    r = run(*base, "--size", "0")
    assert r.returncode == 2 and "px or 'none'" in r.stderr
    assert_clean_error(r, "px or 'none'")
    assert not out.exists()
