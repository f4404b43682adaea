"""`nst-jax sanet`, `nst-jax train sanet` and `nst-jax video --method sanet`: options, sweeps, bad input."""

import json

import jax
import numpy as np
import pytest
from PIL import Image

from nst_jax import adain as A
from nst_jax import sanet as S

from .helpers import assert_clean_error, run, run_here


@pytest.fixture(scope="module")
def files(adain_cli_files, tmp_path_factory):
    """The AdaIN command's images and training set, and an untrained SANet file."""
    d = tmp_path_factory.mktemp("sanet_cli")
    S.save_model(d / "sanet.npz", S.init_params(jax.random.key(0)))
    return adain_cli_files, d / "sanet.npz"


@pytest.mark.slow
def test_train_then_stylize_a_sweep_a_mask_and_a_clip(files, tmp_path):
    """The one end-to-end run: two training steps on an AdaIN decoder, then the network it exported on a
    sweep of alpha (one picture each, a contact sheet), a mask in bands, and a clip."""
    f, _ = files
    ck = tmp_path / "run"
    r = run("train", "sanet", "--content-dir", f / "photos", "--style-dir", f / "paintings", "--ckpt-dir", ck,
            "--decoder-from", f / "decoder.npz", "--steps", "2", "--batch-size", "2", "--crop", "32",
            "--resize", "36", "--log-every", "1")
    assert r.returncode == 0, r.stderr
    assert "identity1" in r.stderr and (ck / "sanet.npz").exists()
    meta = S.load_model(ck / "sanet.npz")[1]
    assert meta["cumulative"]["steps"] == 2 and meta["task_config"]["decoder_from"].endswith("decoder.npz")
    model = ck / "sanet.npz"
    out = tmp_path / "sweep"
    r = run("sanet", f / "content.png", f / "style.png", "-o", out, "--model", model, "--alpha", "0,0.5,1",
            "--size", "none", "--report", tmp_path / "rep.json", "--quiet")
    assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == ["content_alpha-0.5.png", "content_alpha-0.png", "content_alpha-1.png", "grid.png"]
    assert Image.open(out / "content_alpha-1.png").size == (40, 48)
    pics = [np.asarray(Image.open(out / f"content_alpha-{a}.png"), np.float32) for a in ("0", "0.5", "1")]
    assert np.abs(pics[0] - pics[2]).max() > 1  # alpha moves the picture
    report = json.loads((tmp_path / "rep.json").read_text())
    assert report["method"] == "sanet" and report["swept"] == ["alpha"]
    r = run("sanet", f / "content.png", f / "style.png", f / "style2.png", "-o", tmp_path / "m.png",
            "--model", model, "--mask", f / "mask.png", "--tile", "16", "--size", "32", "--quiet")
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "m.png").size == (27, 32)
    frames = tmp_path / "frames"
    frames.mkdir()
    for t in range(3):
        Image.open(f / "content.png").transform((40, 48), Image.AFFINE, (1, 0, t, 0, 1, 0)) \
            .save(frames / f"{t:02d}.png")
    r = run("video", frames, f / "style.png", "-o", tmp_path / "clip", "--method", "sanet", "--model", model,
            "--alpha", "0.8", "--quiet")
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path / "clip").glob("*.png"))) == 3


def test_bad_input_is_one_line_and_writes_nothing(files, tmp_path):
    f, model = files
    (tmp_path / "existing.png").write_bytes(b"keep me")
    A.save_decoder(tmp_path / "decoder.npz", A.init_decoder(jax.random.key(1)))
    out = tmp_path / "existing.png"
    cases = [
        (("sanet", f / "missing.png", f / "style.png", "--model", model), "does not exist"),
        (("sanet", f / "text.jpg", f / "style.png", "--model", model), "text.jpg"),
        (("sanet", f / "content.png", f / "style.png", "--model", tmp_path / "none.npz"), "does not exist"),
        (("sanet", f / "content.png", f / "style.png", "--model", tmp_path / "decoder.npz"), "SANet"),
        (("sanet", f / "content.png", f / "style.png", "--model", model, "--mask", f / "mask.png"),
         "exactly two"),
        (("sanet", f / "content.png", f / "style.png", "--model", model, "--style-blend", "1,2"),
         "blend weights"),
        (("train", "sanet", "--content-dir", f / "photos", "--style-dir", f / "paintings", "--ckpt-dir",
          tmp_path / "ck", "--crop", "30", "--resize", "36"), "multiple of 16"),
        (("train", "sanet", "--content-dir", f / "photos", "--style-dir", f / "paintings", "--ckpt-dir",
          tmp_path / "ck", "--crop", "32", "--init-from", model, "--decoder-from", "shipped"), "not both"),
    ]
    for k, (args, message) in enumerate(cases):  # the first as a real process, the rest in this one
        argv = [*args, "-o", out] if args[0] == "sanet" else args
        assert_clean_error((run if k == 0 else run_here)(*argv), message)
    assert out.read_bytes() == b"keep me" and not (tmp_path / "ck").exists()
    # a sweep writes to a folder: a setting refused before any picture leaves no empty folder behind
    r = run_here("sanet", f / "content.png", f / "style.png", "-o", tmp_path / "sweep", "--alpha", "0.5,1",
                 "--model", model, "--mask", f / "mask.png")
    assert_clean_error(r, "exactly two")
    assert not (tmp_path / "sweep").exists()
    r = run_here("sanet", f / "content.png", f / "style.png", "-o", out, "--alpha", "0.5,2")
    assert r.returncode == 2 and "alpha must be in [0, 1]" in r.stderr
    r = run_here("sanet", f / "content.png", f / "style.png", "-o", f / "style.png", "--model", model)
    assert_clean_error(r, "style.png")
