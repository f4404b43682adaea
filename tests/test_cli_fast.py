"""`nst-jax fast` as a real subprocess."""


import numpy as np
import pytest
from PIL import Image

from nst_jax import feedforward as F

from .helpers import assert_clean_error, run, run_here


@pytest.mark.slow
def test_fast_cli(model_file, tmp_path):
    for k in range(2):
        Image.fromarray((np.random.default_rng(k).random((30, 40, 3)) * 255).astype(np.uint8)) \
            .save(tmp_path / f"c{k}.png")
    r = run("fast", tmp_path / "c0.png", tmp_path / "c1.png", "-o", tmp_path / "outdir", "--model",
            model_file, "--size", "32", "--batch", "2")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "outdir").iterdir()) == ["c0.png", "c1.png"]  # as every command
    assert "saved 2 of 2 pictures" in r.stderr
    r = run("fast", tmp_path / "c0.png", "-o", tmp_path / "one.png", "--model", model_file, "--quiet",
            "--size", "none")
    assert r.returncode == 0 and Image.open(tmp_path / "one.png").size == (40, 30)
    r = run("fast", "--list")
    assert r.returncode == 0, r.stderr
    assert F.shipped_styles()
    for name, (path, _) in F.shipped_styles().items():  # steps of every run that made the network
        meta = F.load_model(path)[1]
        steps = meta["cumulative"]["steps"] if "cumulative" in meta else meta["step"]
        assert f"{name}\t{steps} steps" in r.stdout
    (tmp_path / "existing.png").write_bytes(b"keep")
    r = run_here("fast", tmp_path / "c0.png", "-o", tmp_path / "existing.png", "--model", "no_such_style")
    assert_clean_error(r, "no shipped model named")
    (tmp_path / "trunc.png").write_bytes((tmp_path / "c0.png").read_bytes()[:80])
    r = run_here("fast", tmp_path / "trunc.png", "-o", tmp_path / "existing.png", "--model", model_file)
    assert_clean_error(r, "damaged or truncated")
    r = run_here("fast", tmp_path / "c0.png", tmp_path / "c1.png", "-o", tmp_path / "existing.png",
                 "--model", model_file)
    assert_clean_error(r, "must be a folder")
    assert (tmp_path / "existing.png").read_bytes() == b"keep"
    r = run_here("fast", tmp_path / "c0.png", tmp_path / "c1.png", "-o", tmp_path / "multi.png", "--model",
                 model_file)
    assert_clean_error(r, "names an image file")
    assert not (tmp_path / "multi.png").exists()
    conditional = [n for n, (_, inside) in F.shipped_styles().items() if inside]
    if len(conditional) >= 2:  # a style of a conditional network, and another of its styles
        r = run_here("fast", tmp_path / "c0.png", "-o", tmp_path / "s.png", "--model", conditional[0],
                     "--style", conditional[1])
        assert_clean_error(r, "already one style")
