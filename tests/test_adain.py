"""AdaIN: the pure functions against float64 NumPy, the decoder, and inference controls."""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nst_jax import adain as A
from nst_jax import adain_train as AT
from nst_jax.data import ArraySource
from nst_jax.errors import NSTError
from nst_jax.nets import pad_to_multiple

from .helpers import loss_before_after


def np_adain(x, y, eps=1e-5):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    mx, my = x.mean(axis=(1, 2), keepdims=True), y.mean(axis=(1, 2), keepdims=True)
    sx = np.sqrt(((x - mx) ** 2).mean(axis=(1, 2), keepdims=True) + eps)
    sy = np.sqrt(((y - my) ** 2).mean(axis=(1, 2), keepdims=True) + eps)
    return (x - mx) / sx * sy + my


@pytest.mark.parametrize("shapes", [((2, 5, 7, 4), (2, 9, 3, 4)), ((3, 4, 4, 8), (1, 6, 6, 8))])
def test_adain_matches_float64_numpy(shapes):
    rng = np.random.default_rng(0)
    x = rng.gamma(2.0, 3.0, shapes[0]).astype(np.float32)
    y = (rng.normal(size=shapes[1]) * 5 + 2).astype(np.float32)
    out = np.asarray(A.adain(x, y))
    ref = np_adain(x, y)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    # the defining property: output moments are the style's
    np.testing.assert_allclose(out.mean(axis=(1, 2)), np.broadcast_to(y.mean(axis=(1, 2)), out.shape[::3]),
                               rtol=1e-3, atol=1e-3)


def test_decoder_architecture_and_parameter_count():
    params = A.init_decoder(jax.random.key(0))
    # closed form: the mirror of VGG-19 up to relu4_1, 3x3 kernels + biases
    plan = [(512, 256), (256, 256), (256, 256), (256, 256), (256, 128), (128, 128), (128, 64), (64, 64),
            (64, 3)]
    assert A.count_params(params) == sum(9 * i * o + o for i, o in plan) == 3_505_219
    t = jnp.zeros((2, 5, 7, 512))
    assert A.decode(params, t).shape == (2, 40, 56, 3)


@pytest.fixture(scope="module")
def decoder():
    return A.init_decoder(jax.random.key(1))


@pytest.mark.parametrize("hw", [(37, 53), (64, 64), (9, 130), (8, 8)])
def test_stylize_keeps_odd_sizes(params, decoder, hw):
    rng = np.random.default_rng(0)
    content = rng.random(hw + (3,)).astype(np.float32)
    style = rng.random((40, 30, 3)).astype(np.float32)
    out, report = A.stylize(content, style, decoder=decoder, weights=params, size=None, style_size=None)
    assert out.shape == hw + (3,) and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    assert [report["height"], report["width"]] == list(hw)


def _direct(params, decoder, content, targets):
    """decoder(sum_k w_k AdaIN-target_k) computed by hand from the pure functions."""
    f = A.encode(params, pad_to_multiple(jnp.asarray(content)[None], A.MULTIPLE))[A.ENCODER_LAYER]
    t = sum(w * tk for w, tk in targets(f))
    h, w = content.shape[:2]
    return np.clip(np.asarray(A.decode(decoder, t)[0, :h, :w]), 0, 1)


def test_alpha_and_blend_are_the_papers_convex_combinations(params, decoder):
    rng = np.random.default_rng(2)
    c = rng.random((48, 40, 3)).astype(np.float32)
    s1, s2 = rng.random((32, 32, 3)).astype(np.float32) ** 2, rng.random((40, 24, 3)).astype(np.float32)
    kw = dict(decoder=decoder, weights=params, size=None, style_size=None)

    def enc(s):
        return A.encode(params, pad_to_multiple(jnp.asarray(s)[None], A.MULTIPLE))[A.ENCODER_LAYER]

    # alpha = 0: the content's own features through the decoder, whatever the style
    out0, _ = A.stylize(c, s1, alpha=0.0, **kw)
    np.testing.assert_allclose(out0, _direct(params, decoder, c, lambda f: [(1.0, f)]), atol=1e-5)
    np.testing.assert_allclose(out0, A.stylize(c, s2, alpha=0.0, **kw)[0], atol=1e-6)
    # alpha = 0.3
    out3, _ = A.stylize(c, s1, alpha=0.3, **kw)
    ref3 = _direct(params, decoder, c, lambda f: [(0.3, A.adain(f, enc(s1))), (0.7, f)])
    np.testing.assert_allclose(out3, ref3, atol=1e-5)
    # blend 1:3 of two styles
    outb, rep = A.stylize(c, [s1, s2], style_blend=[1, 3], **kw)
    assert rep["style_blend"] == [0.25, 0.75]
    refb = _direct(params, decoder, c, lambda f: [(0.25, A.adain(f, enc(s1))), (0.75, A.adain(f, enc(s2)))])
    np.testing.assert_allclose(outb, refb, atol=1e-5)
    # blend weights (1, 0) are the first style alone
    np.testing.assert_allclose(A.stylize(c, [s1, s2], style_blend=[1, 0], **kw)[0],
                               A.stylize(c, s1, **kw)[0], atol=1e-5)


def test_mask_applies_one_style_inside_and_the_other_outside(params, decoder):
    rng = np.random.default_rng(3)
    c = rng.random((64, 64, 3)).astype(np.float32)
    s1, s2 = np.full((32, 32, 3), 0.9, np.float32) * rng.random((32, 32, 3)), rng.random((32, 32, 3)) * 0.3
    kw = dict(decoder=decoder, weights=params, size=None, style_size=None)
    only1, _ = A.stylize(c, s1, **kw)
    only2, _ = A.stylize(c, s2, **kw)
    ones = np.ones((64, 64), np.float32)
    np.testing.assert_allclose(A.stylize(c, [s1, s2], mask=ones, **kw)[0], only1, atol=1e-5)
    np.testing.assert_allclose(A.stylize(c, [s1, s2], mask=0 * ones, **kw)[0], only2, atol=1e-5)
    half = ones.copy()
    half[:, 32:] = 0
    out, _ = A.stylize(c, [s1, s2], mask=half, **kw)
    # away from the boundary (the decoder's receptive field), each side is its own style's result
    left, right = out[:, :16], out[:, 48:]
    assert np.abs(left - only1[:, :16]).mean() < 0.2 * np.abs(left - only2[:, :16]).mean()
    assert np.abs(right - only2[:, 48:]).mean() < 0.2 * np.abs(right - only1[:, 48:]).mean()


def test_bad_arguments(params, decoder):
    c = np.zeros((16, 16, 3), np.float32)
    kw = dict(decoder=decoder, weights=params, size=None, style_size=None)
    with pytest.raises(NSTError, match="alpha"):
        A.stylize(c, c, alpha=1.5, **kw)
    with pytest.raises(NSTError, match="exactly two"):
        A.stylize(c, c, mask=np.ones((16, 16)), **kw)
    with pytest.raises(NSTError, match="blend weights for"):
        A.stylize(c, [c, c], style_blend=[1.0], **kw)
    with pytest.raises(NSTError, match="too small"):
        A.stylize(np.zeros((4, 30, 3), np.float32), c, **kw)


def test_stylize_compiles_its_two_programs_and_nothing_else(params, decoder, tmp_path):
    """A picture of a new size from a decoder file compiles the style encoder and the transfer, nothing per
    weight or per array (each such program costs ~20 ms of a whole command's fixed time)."""
    from nst_jax.compile_cache import compile_stats

    path = A.save_decoder(tmp_path / "d.npz", decoder, {})
    rng = np.random.default_rng(9)
    content, style = rng.random((23, 41, 3)), rng.random((27, 19, 3))
    before = compile_stats()[0]
    A.stylize(content, style, decoder=path, weights=params, size=None, style_size=None)
    assert compile_stats()[0] - before == 2


def test_decoder_file_roundtrip_and_errors(tmp_path, decoder):
    path = A.save_decoder(tmp_path / "d.npz", decoder, {"steps": 3})
    loaded, meta = A.load_decoder(path)
    assert meta == {"steps": 3}
    for a, b in zip(jax.tree_util.tree_leaves(decoder), jax.tree_util.tree_leaves(loaded), strict=True):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a, np.float16).astype(np.float32))
    assert path.stat().st_size < 10 * 2**20
    with pytest.raises(NSTError, match="does not exist"):
        A.load_decoder(tmp_path / "missing.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(NSTError, match="not a readable"):
        A.load_decoder(tmp_path / "text.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(NSTError, match="not an nst_jax AdaIN decoder"):
        A.load_decoder(tmp_path / "other.npz")
    flat = {k: v for k, v in np.load(path).items()}
    flat["conv1_1/Conv_0/kernel"] = np.zeros((3, 3, 64, 4), np.float16)
    np.savez(tmp_path / "wrong.npz", **flat)
    with pytest.raises(NSTError, match="expected architecture"):
        A.load_decoder(tmp_path / "wrong.npz")


@pytest.fixture(scope="module")
def torch_adain(h5_path, tmp_path_factory):
    """The independent PyTorch AdaIN (experiments/torch_reference.py) with the same decoder file."""
    from experiments import torch_reference as tr

    path = tmp_path_factory.mktemp("torch_adain") / "decoder.npz"
    A.save_decoder(path, A.init_decoder(jax.random.key(5)))
    return tr.TorchAdaIN(h5_path, A.CHANNEL_MEANS_FILE, path), path


def test_stylize_matches_pytorch_reference(params, torch_adain):
    import torch

    from experiments import torch_reference as tr

    ref, path = torch_adain
    decoder, _ = A.load_decoder(path)
    rng = np.random.default_rng(6)
    content = rng.random((44, 61, 3)).astype(np.float32)  # odd sizes: padding and cropping agree
    style = rng.random((35, 40, 3)).astype(np.float32) ** 2
    for alpha in (1.0, 0.4):
        out, _ = A.stylize(content, style, alpha=alpha, decoder=decoder, weights=params, size=None,
                                 style_size=None)
        with torch.no_grad():
            expect = tr.nhwc(ref.stylize(tr.nchw(content[None]), tr.nchw(style[None]), alpha))[0]
        assert np.abs(out - expect).max() < 2e-3, np.abs(out - expect).max()


@pytest.mark.slow
def test_bilinear_decoder_file_stylizes_as_pytorchs_bilinear_decoder(params, h5_path, tmp_path):
    """A decoder trained with bilinear upsampling (its file says so) runs bilinear everywhere: the whole
    image and bands, against PyTorch's ``Upsample(mode="bilinear")`` decoder with the same weights."""
    import torch

    from experiments import torch_reference as tr

    path = A.save_decoder(tmp_path / "bilinear.npz", A.init_decoder(jax.random.key(8)),
                          {"task_config": {"upsample": "bilinear"}})
    assert A.upsampling(A.load_decoder(path)[1]) == "bilinear" and A.upsampling({}) == "nearest"
    ref = tr.TorchAdaIN(h5_path, A.CHANNEL_MEANS_FILE, path, upsample="bilinear")
    rng = np.random.default_rng(9)
    content = rng.random((80, 45, 3)).astype(np.float32)
    style = rng.random((35, 40, 3)).astype(np.float32) ** 2
    with torch.no_grad():
        expect = tr.nhwc(ref.stylize(tr.nchw(content[None]), tr.nchw(style[None])))[0]
    for tile in ("none", 32):
        out, _ = A.stylize(content, style, decoder=path, weights=params, size=None, style_size=None,
                           tile=tile)
        assert np.abs(out - expect).max() < 2e-3, (tile, np.abs(out - expect).max())
    nearest, _ = A.stylize(content, style, decoder=A.load_decoder(path)[0], weights=params, size=None,
                           style_size=None)
    assert np.abs(nearest - expect).max() > 0.01  # bare params: the paper's nearest-neighbour decoder
    with pytest.raises(NSTError, match="upsampling must be one of"):
        AT.AdaINTask(params, None, None, objective="reconstruction", upsample="cubic")


def test_training_loss_matches_pytorch_reference(params, torch_adain):
    import torch

    from experiments import torch_reference as tr

    ref, path = torch_adain
    decoder, _ = A.load_decoder(path)
    rng = np.random.default_rng(7)
    content = rng.random((2, 32, 32, 3)).astype(np.float32)
    style = rng.random((2, 32, 32, 3)).astype(np.float32) ** 3
    total, terms = AT.adain_loss(decoder, params, content, style)
    with torch.no_grad():
        t_total, t_c, t_s = ref.loss(tr.nchw(content), tr.nchw(style))
    np.testing.assert_allclose(float(terms["content"]), float(t_c), rtol=1e-4)
    np.testing.assert_allclose(float(terms["style"]), float(t_s), rtol=1e-4)
    np.testing.assert_allclose(float(total), float(t_total), rtol=1e-4)


def test_reconstruction_loss_matches_pytorch_reference_and_trains(params, torch_adain):
    """The warm-up objective: pixel MSE of decoder(encoder(c)) against c, as the PyTorch network computes
    it; a few steps lower it; it needs no style images."""
    import torch

    from experiments import torch_reference as tr

    ref, path = torch_adain
    decoder, _ = A.load_decoder(path)
    rng = np.random.default_rng(8)
    content = rng.random((2, 32, 32, 3)).astype(np.float32)
    loss, terms = AT.reconstruction_loss(decoder, params, content)
    with torch.no_grad():
        x = tr.nchw(content)
        expect = torch.mean((ref.decoder(ref.encode(x)["relu4_1"]) - x) ** 2)
    np.testing.assert_allclose(float(loss), float(expect), rtol=1e-4)
    assert float(terms["pixel"]) == float(loss)
    task = AT.AdaINTask(params, ArraySource(list(content)), None, crop=32, resize=32, batch_size=2,
                       objective="reconstruction")
    assert task.config["objective"] == "reconstruction"
    before, after = loss_before_after(task, 10, learning_rate=1e-3)
    assert np.isfinite(after) and after < 0.5 * before, (before, after)
    with pytest.raises(NSTError, match="needs style images"):
        AT.AdaINTask(params, ArraySource(list(content)), None, crop=32, resize=32)
    with pytest.raises(NSTError, match="objective must be"):
        AT.AdaINTask(params, ArraySource(list(content)), None, crop=32, resize=32, objective="x")


def _style_distance(params, x, style):
    fx = A.encode(params, jnp.asarray(x)[None], A.STYLE_LAYERS)
    fs = A.encode(params, jnp.asarray(style)[None], A.STYLE_LAYERS)
    total = 0.0
    for k in A.STYLE_LAYERS:
        (m1, s1), (m2, s2) = A.mean_std(fx[k]), A.mean_std(fs[k])
        total += float(jnp.mean((m1 - m2) ** 2) + jnp.mean((s1 - s2) ** 2))
    return total


def _content_distance(params, x, content):
    a = A.encode(params, jnp.asarray(x)[None])[A.ENCODER_LAYER]
    b = A.encode(params, jnp.asarray(content)[None])[A.ENCODER_LAYER]
    return float(jnp.sum((a - b) ** 2) / jnp.sum(b ** 2))


SHARED_IMAGES = Path(__file__).resolve().parents[2] / "shared" / "images"


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_IMAGES / "golden_gate.jpg").is_file(), reason="needs ../shared/images")
def test_shipped_decoder_moves_an_unseen_photo_toward_the_painting(params, photo="golden_gate.jpg",
                                                                   painting="the_scream.jpg"):
    """The shipped decoder, on photos outside its training set: the style distance (AdaIN's style loss)
    to the painting falls by more than half, and the content distance stays below that of a no-content
    control (the painting itself, resized to the photo's shape)."""
    from nst_jax import image as im

    content = im.resize_longest(im.load_image(SHARED_IMAGES / photo), 256)
    style = im.resize_longest(im.load_image(SHARED_IMAGES / painting), 256)
    out, _ = A.stylize(content, style, weights=params, size=None, style_size=None)
    assert _style_distance(params, out, style) < 0.5 * _style_distance(params, content, style)
    control = im.resize(style, content.shape[:2])
    assert _content_distance(params, out, content) < 0.9 * _content_distance(params, control, content)


def test_periodic_weight_adds_the_periodic_term_of_the_decoded_picture(params):
    """``periodic_weight``: the paper's loss plus that times nst_jax.losses.periodic_peak_loss (tested against
    float64 NumPy in test_losses) of the decoder's picture; 0 leaves the paper's loss as it is."""
    from nst_jax import losses

    decoder = A.init_decoder(jax.random.key(0))
    rng = np.random.default_rng(5)
    content = rng.random((1, 64, 64, 3)).astype(np.float32)
    style = rng.random((1, 64, 64, 3)).astype(np.float32) ** 2
    loss = jax.jit(AT.adain_loss, static_argnames=("periodic_weight",))
    base, plain = loss(decoder, params, content, style)
    total, terms = loss(decoder, params, content, style, periodic_weight=3.0)
    assert "periodic" not in plain
    enc = A.encode(params, np.concatenate([content, style]))[A.ENCODER_LAYER]
    picture = A.decode(decoder, A.adain(enc[:1], enc[1:]))
    assert float(terms["periodic"]) == pytest.approx(float(losses.periodic_peak_loss(picture)), rel=1e-4)
    assert float(total) == pytest.approx(float(base) + 3.0 * float(terms["periodic"]), rel=1e-5)
    with pytest.raises(NSTError, match="0 or more"):
        AT.AdaINTask(params, None, None, periodic_weight=-1.0, objective="reconstruction")
