"""What every picture command shares (nst_jax.cli.pictures, nst_jax.cli.common): nothing a user owns is
overwritten, one file per picture, usage errors exit 2, help states each default once.  In process, with the
fast network (the cheapest method), except where a command's own parser is the subject."""

import contextlib
import io
import json

import numpy as np
import pytest
from PIL import Image

from nst_jax.cli import build_parser, main


def _image(path, h=24, w=28, seed=0):
    Image.fromarray((np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)).save(path)
    return path


def _main(*args):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            rc = main([str(a) for a in args])
        except SystemExit as e:  # argparse's usage errors
            rc = e.code
    return rc, err.getvalue()


@pytest.fixture()
def photos(tmp_path):
    d = tmp_path / "photos"
    d.mkdir()
    _image(d / "a.png", seed=1)
    _image(d / "b.png", seed=2)
    (d / "broken.png").write_bytes(b"\x89PNG not really")
    return d


def test_an_output_that_names_an_input_is_refused(photos, model_file, tmp_path):
    keep = (photos / "a.png").read_bytes()
    for args in (("fast", photos / "a.png", "-o", photos / "a.png"),
                 ("fast", photos, "-o", photos),  # a folder's outputs onto its own photos
                 ("stylize", photos / "a.png", photos / "b.png", "-o", photos / "b.png"),
                 ("adain", photos / "a.png", photos / "b.png", "-o", photos / "a.png")):
        rc, err = _main(*args, "--model", model_file) if args[0] == "fast" else _main(*args)
        assert rc == 1 and "is the input" in err and "Traceback" not in err, err
    assert (photos / "a.png").read_bytes() == keep


def test_a_folder_names_the_broken_file_does_the_rest_and_resumes(photos, model_file, tmp_path):
    out, rep = tmp_path / "out", tmp_path / "r.json"
    rc, err = _main("fast", photos, "-o", out, "--model", model_file, "--size", "24", "--quiet", "--report",
                    rep)
    assert rc == 1 and "broken.png" in err, err
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]  # CONTENT.png, as every command
    report = json.loads(rep.read_text())
    assert [f["content"][-10:] for f in report["failed"]] == ["broken.png"]
    assert {o["seconds"] > 0 for o in report["outputs"]} == {True}
    (out / "a.png").write_bytes(b"finished before")
    (out / "b.png").unlink()
    rc, err = _main("fast", photos / "a.png", photos / "b.png", "-o", out, "--model", model_file, "--size",
                    "24", "--skip-existing")
    assert rc == 0 and "1 skipped" in err, err
    assert (out / "a.png").read_bytes() == b"finished before" and (out / "b.png").is_file()


def test_one_picture_into_a_folder(photos, model_file, tmp_path):
    (tmp_path / "into").mkdir()
    rc, err = _main("fast", photos / "a.png", "-o", f"{tmp_path / 'into'}/", "--model", model_file, "--size",
                    "24", "--quiet")
    assert rc == 0, err
    assert [p.name for p in (tmp_path / "into").iterdir()] == ["a.png"]


def test_fast_style_names_without_a_model_pick_the_network_that_paints_them(photos, tmp_path):
    from nst_jax import feedforward

    styles = [n for n, (_, inside) in feedforward.shipped_styles().items() if inside][:2]
    if len(styles) < 2:
        pytest.skip("no shipped network of several styles")
    out = tmp_path / "blend.png"
    rc, err = _main("fast", photos / "a.png", "-o", out, "--style", f"{styles[0]}=0.5", f"{styles[1]}=0.5",
                    "--size", "24", "--quiet")
    assert rc == 0 and out.is_file(), err
    rc, err = _main("fast", "--list")
    assert rc == 0


@pytest.mark.parametrize("args, match", [
    (("--style-weight", "20,20"), "given twice"),
    (("--style-weight", "1e2,100"), "given twice"),  # the same value, the same file name
    (("--style-weight", "-5"), "at least 0"),
    (("--tile", "foo"), "tile must be"),
    (("--size", "0"), "px or 'none'"),
])
def test_usage_errors_exit_2(photos, tmp_path, args, match):
    rc, err = _main("stylize", photos / "a.png", photos / "b.png", "-o", tmp_path / "o.png", *args)
    assert rc == 2 and match in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o.png").exists()


def test_stylize_takes_size_none():
    args = build_parser().parse_args(["stylize", "a.png", "s.png", "-o", "o.png", "--size", "none"])
    assert args.size is None


def test_help_states_each_default_once():
    parser = build_parser()
    subs = parser._subparsers._group_actions[0].choices  # argparse keeps them there
    for name in ("stylize", "adain", "fast", "video"):
        text = subs[name].format_help()
        assert "(default: None)" not in text and "('" not in text, (name, text)
        for block in text.split("\n  -"):
            assert block.count("(default:") <= 1, (name, block)
    assert "relu1_1,relu2_1" in subs["stylize"].format_help().replace("\n", "").replace(" ", "")


def test_video_run_record_is_the_same_from_another_folder(tmp_path, monkeypatch):
    from nst_jax.cli.video import run_record
    from nst_jax.video import VideoConfig

    (tmp_path / "clip").mkdir()
    (tmp_path / "sub").mkdir()
    parser = build_parser()
    monkeypatch.chdir(tmp_path)
    here = run_record(parser.parse_args(["video", "clip", "-o", "out", "--method", "fast"]), VideoConfig(),
                      (8, 8))
    monkeypatch.chdir(tmp_path / "sub")
    there = run_record(parser.parse_args(["video", "../clip", "-o", str(tmp_path / "out"), "--method",
                                          "fast"]), VideoConfig(), (8, 8))
    assert here == there


@pytest.mark.parametrize("value", ["-1", "nan", "x"])
def test_train_periodic_weight_must_be_a_number_of_zero_or_more(tmp_path, value):
    rc, err = _main("train", "adain", "--content-dir", tmp_path, "--style-dir", tmp_path, "--ckpt-dir",
                    tmp_path / "run", "--periodic-weight", value)
    assert rc == 2 and "--periodic-weight" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "run").exists()
