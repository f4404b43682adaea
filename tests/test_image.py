"""Image loading: every awkward input either works or fails with a clear NSTError."""

import numpy as np
import pytest
from PIL import Image

from nst_jax import NSTError
from nst_jax import image as im

from .helpers import gradient, png_bomb, write_variants


def test_variants_load_as_rgb_float(tmp_path):
    v = write_variants(tmp_path)
    for name, path in v.items():
        x = im.load_image(path)
        assert x.dtype == np.float32 and x.ndim == 3 and x.shape[-1] == 3, name
        assert 0.0 <= x.min() and x.max() <= 1.0, name
    assert im.load_image(v["exif"]).shape == (20, 30, 3)  # EXIF orientation respected
    g16 = im.load_image(v["grey16"])
    np.testing.assert_allclose(g16[..., 0], gradient()[..., 0], atol=1e-4)  # 16 bits kept, not clipped
    rgba = im.load_image(v["rgba"])  # half-transparent over white
    ref = (gradient() * 255).astype(np.uint8) / 255.0 * (128 / 255) + (1 - 128 / 255)
    np.testing.assert_allclose(rgba, ref, atol=2e-3)
    grey = im.load_image(v["grey"])
    assert np.allclose(grey[..., 0], grey[..., 1])


@pytest.mark.parametrize("make,match", [
    (lambda p: p, "does not exist"),
    (lambda p: (p.write_bytes(b""), p)[1], "is empty"),
    (lambda p: (p.write_text("hello, I am not an image\n"), p)[1], "not an image"),
    (lambda p: png_bomb(p), "enormous|megapixels"),
])
def test_bad_files(tmp_path, make, match):
    with pytest.raises(NSTError, match=match):
        im.load_image(make(tmp_path / "x.jpg"))


def test_truncated_jpeg(tmp_path):
    full = tmp_path / "full.jpg"
    Image.fromarray((gradient(64, 64) * 255).astype(np.uint8)).save(full, quality=95)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(full.read_bytes()[:400])
    with pytest.raises(NSTError, match="damaged or truncated"):
        im.load_image(cut)


def test_save_is_atomic_and_keeps_existing_file_on_failure(tmp_path, monkeypatch):
    out = tmp_path / "out.png"
    out.write_bytes(b"precious")

    def boom(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Image.Image, "save", boom)
    with pytest.raises(RuntimeError):
        im.save_image(out, np.zeros((4, 4, 3), np.float32))
    assert out.read_bytes() == b"precious"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]  # no temp file left behind


def test_save_round_trip_and_bad_outputs(tmp_path):
    x = gradient(10, 12).astype(np.float32)
    im.save_image(tmp_path / "a.png", x)
    np.testing.assert_allclose(im.load_image(tmp_path / "a.png"), x, atol=1 / 255)
    with pytest.raises(NSTError, match="format"):
        im.check_output(tmp_path / "a.xyz")
    with pytest.raises(NSTError, match="does not exist"):
        im.check_output(tmp_path / "nope" / "a.png")


def test_resize_and_fit_shape():
    assert im.fit_shape((768, 1024), 256) == (192, 256)
    x = gradient(50, 80).astype(np.float32)
    y = im.resize(x, (25, 40))
    assert y.shape == (25, 40, 3)
    np.testing.assert_allclose(y.mean((0, 1)), x.mean((0, 1)), atol=0.01)


def test_outputs_get_the_usual_file_mode(tmp_path):
    """Atomic writes go through a private temporary file; the result must still be readable by others
    as any newly created file is (0o666 minus the umask), not owner-only."""
    import os

    from nst_jax.image import save_image
    from nst_jax.nets import save_params

    mask = os.umask(0o022)
    try:
        img = save_image(tmp_path / "a.png", np.zeros((4, 4, 3), np.float32))
        npz = save_params(tmp_path / "m.npz", {"w": np.zeros(3)}, "test")
        for path in (img, npz):
            assert (path.stat().st_mode & 0o777) == 0o644, oct(path.stat().st_mode)
    finally:
        os.umask(mask)


def test_shipped_painting_with_its_provenance():
    """The demo's style image ships inside the package (a few hundred KB), with its provenance beside it."""
    from nst_jax import demo

    path = demo.PAINTINGS / "starry_night.jpg"
    assert path.stat().st_size < 400_000
    assert "public domain" in (demo.PAINTINGS / "PROVENANCE.md").read_text()
    img = demo.painting("starry_night")
    assert img.dtype == np.float32 and img.shape == (640, 1024, 3) and 0.0 <= img.min() < img.max() <= 1.0


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path, monkeypatch):
    """`make demo` (README's first command) from start to its grid, at a tiny Gatys size: every method's
    picture written, and the grid of five."""
    from nst_jax import demo

    monkeypatch.setenv("NST_JAX_XLA_CACHE", str(tmp_path / "xla"))
    assert demo.main(["--out", str(tmp_path), "--size", "32", "--iters", "2"]) == 0
    names = ("demo_content.png", "demo_style.png", "demo_stylised.png", "demo_adain.png", "demo_fast.png")
    for name in names:
        assert (tmp_path / name).stat().st_size > 0, name
    grid = im.load_image(tmp_path / "demo_grid.jpg")
    assert grid.shape[1] > 2 * grid.shape[0]  # five pictures in a row


def test_match_histogram_matches_scipy_sqrtm():
    """The colour map of every method's "histogram" mode (Gatys's image analogies variant, pytorch-AdaIN's
    CORAL) against an independent one built from scipy's matrix square root."""
    scipy_linalg = pytest.importorskip("scipy.linalg")
    from nst_jax.image import match_histogram

    rng = np.random.default_rng(1)
    src = np.clip(rng.normal(0.5, 0.15, (20, 30, 3)) @ np.array([[1, .3, 0], [0, 1, .2], [.1, 0, .8]]), 0, 1)
    tgt = np.clip(rng.normal([0.3, 0.5, 0.7], 0.1, (25, 17, 3)), 0, 1)
    out = match_histogram(src.astype(np.float32), tgt.astype(np.float32)).astype(np.float64)
    s, t = src.reshape(-1, 3), tgt.reshape(-1, 3)
    cs, ct = np.cov(s, rowvar=False) + 1e-5 * np.eye(3), np.cov(t, rowvar=False) + 1e-5 * np.eye(3)
    a = np.real(scipy_linalg.sqrtm(ct)) @ np.linalg.inv(np.real(scipy_linalg.sqrtm(cs)))
    ref = np.clip((s - s.mean(0)) @ a.T + t.mean(0), 0, 1).reshape(src.shape)
    np.testing.assert_allclose(out, ref, atol=2e-4)


def test_preserve_color_one_meaning_per_mode():
    from nst_jax.errors import NSTError
    from nst_jax.image import match_histogram, preserve_color, transfer_luminance

    rng = np.random.default_rng(2)
    content, style, out = (rng.random((12, 10, 3)).astype(np.float32) ** p for p in (1, 2, 3))
    # histogram: the styles recoloured before; a fixed-style network's output recoloured after
    np.testing.assert_array_equal(preserve_color("histogram", content, styles=[style])[0],
                                  match_histogram(style, content))
    assert preserve_color("histogram", content, stylised=out) is out
    assert preserve_color("histogram", content, styles=[style], fixed_style=True)[0] is style
    np.testing.assert_array_equal(preserve_color("histogram", content, stylised=out, fixed_style=True),
                                  match_histogram(out, content))
    # luminance: after, for every method
    for fixed in (False, True):
        assert preserve_color("luminance", content, styles=[style], fixed_style=fixed)[0] is style
        np.testing.assert_array_equal(preserve_color("luminance", content, stylised=out, fixed_style=fixed),
                                      transfer_luminance(out, content))
    assert preserve_color(None, content, stylised=out) is out
    with pytest.raises(NSTError, match="'luminance' or 'histogram'"):
        preserve_color("hue", content, stylised=out)
