"""Fast feed-forward networks (Johnson et al. + instance norm): network, loss, training, inference, CLI."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nst_jax import feedforward as F
from nst_jax import feedforward_train as FT
from nst_jax import modules
from nst_jax.data import ArraySource
from nst_jax.errors import NSTError
from nst_jax.vgg import vgg19_features

from .conftest import shared_image
from .helpers import loss_before_after


def test_parameter_count_closed_form():
    def conv(k, cin, cout):
        return k * k * cin * cout + cout

    def inorm(c):
        return 2 * c

    expected = (conv(9, 3, 32) + inorm(32) + conv(3, 32, 64) + inorm(64) + conv(3, 64, 128) + inorm(128)
                + 5 * 2 * (conv(3, 128, 128) + inorm(128))
                + conv(3, 128, 64) + inorm(64) + conv(3, 64, 32) + inorm(32) + conv(9, 32, 3))
    assert F.count_params(F.init_net(jax.random.key(0))) == expected == 1_679_235


def test_instance_norm_matches_float64_numpy():
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(3, 7, 5, 6)) * 4 + 2).astype(np.float32)
    scale, bias = rng.normal(size=6).astype(np.float32), rng.normal(size=6).astype(np.float32)
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=(1, 2), keepdims=True)
    var = ((x64 - mean) ** 2).mean(axis=(1, 2), keepdims=True)
    ref = (x64 - mean) / np.sqrt(var + 1e-5) * scale + bias
    np.testing.assert_allclose(np.asarray(F.instance_norm(x, scale, bias)), ref, rtol=1e-5, atol=1e-5)
    module = modules.InstanceNorm()
    out = module.apply({"params": {"scale": scale, "bias": bias}}, x)
    np.testing.assert_allclose(np.asarray(out), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(1, 37, 53, 3), (2, 9, 130, 3), (1, 4, 4, 3), (1, 64, 64, 3)])
def test_network_keeps_odd_sizes(shape):
    params = F.init_net(jax.random.key(1))
    x = jnp.asarray(np.random.default_rng(0).random(shape), jnp.float32)
    assert F.apply_net(params, x).shape == shape


@pytest.mark.parametrize("k,stride,hw", [(3, 1, (11, 13)), (9, 1, (12, 10)), (3, 2, (12, 16)),
                                         (3, 2, (11, 13)), (9, 2, (12, 12))])
def test_conv_layers_match_lax_valid_convolution(k, stride, hw):
    """The fast paths (SAME on the padded input, cropped; SAME stride 2) equal lax's VALID convolution,
    values and gradients."""
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.random((2, *hw, 8)), jnp.float32)
    layer = modules.ConvLayer(5, k, stride)
    p = layer.init(jax.random.key(0), x)
    kern, b = p["params"]["kernel"], p["params"]["bias"]
    pad = k // 2

    def ref(x, kern):
        xp = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
        return jax.lax.conv_general_dilated(xp, kern, (stride, stride), "VALID",
                                            dimension_numbers=("NHWC", "HWIO", "NHWC")) + b

    def ours(x, kern):
        return layer.apply({"params": {"kernel": kern, "bias": b}}, x)

    np.testing.assert_allclose(np.asarray(ours(x, kern)), np.asarray(ref(x, kern)), rtol=1e-5, atol=1e-5)
    g_ours = jax.grad(lambda x, kern: jnp.sum(ours(x, kern) ** 2), argnums=(0, 1))(x, kern)
    g_ref = jax.grad(lambda x, kern: jnp.sum(ref(x, kern) ** 2), argnums=(0, 1))(x, kern)
    for a, e in zip(g_ours, g_ref, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(e), rtol=1e-4, atol=1e-4 * np.abs(e).max())


@pytest.mark.slow
def test_a_few_steps_lower_the_loss(params):
    rng = np.random.default_rng(0)
    style = rng.random((48, 48, 3)).astype(np.float32) ** 3
    content = ArraySource([rng.random((32, 32, 3)) for _ in range(4)])
    task = FT.FastTask(params, style, content, crop=32, resize=32, batch_size=4, style_size=None)
    before, after = loss_before_after(task, 10, learning_rate=1e-3)
    assert np.isfinite(after) and after < 0.5 * before, (before, after)


def test_model_file_roundtrip_and_errors(model_file, tmp_path):
    params, meta = F.load_model(model_file)
    assert meta == {"step": 0} and F.count_params(params) == 1_679_235
    assert model_file.stat().st_size < 8 * 2**20
    with pytest.raises(NSTError, match="no shipped model named"):
        F.load_model("no_such_style")
    with pytest.raises(NSTError, match="does not exist"):
        F.load_model(tmp_path / "missing.npz")
    (tmp_path / "bad.npz").write_text("nope")
    with pytest.raises(NSTError, match="not a readable"):
        F.load_model(tmp_path / "bad.npz")


def test_fast_stylize_batches_same_shapes(model_file):
    rng = np.random.default_rng(4)
    a, b, c = rng.random((40, 60, 3)), rng.random((20, 30, 3)), rng.random((30, 30, 3))
    outs, report = F.stylize([a, b, c], model_file, size=32, batch=3)
    assert [o.shape for o in outs] == [(21, 32, 3), (21, 32, 3), (32, 32, 3)]
    assert report["batches"] == 2  # a and b share a shape after resizing
    a = a.astype(np.float32)
    single, _ = F.stylize(a, model_file, size=None, preserve_color="luminance")
    assert single.shape == (40, 60, 3)
    # colour preservation is the tested image.transfer_luminance / match_histogram on the raw output
    from nst_jax.image import match_histogram, transfer_luminance

    raw, _ = F.stylize(a, model_file, size=None)
    np.testing.assert_allclose(single, transfer_luminance(raw, a), atol=1e-6)
    hist, _ = F.stylize(a, model_file, size=None, preserve_color="histogram")
    np.testing.assert_allclose(hist, match_histogram(raw, a), atol=1e-6)


def test_stylize_compiles_the_network_and_nothing_else(model_file):
    """A picture of a new size from a model file compiles the network's program only (nothing per weight:
    each such program costs ~20 ms of a whole command's fixed time)."""
    from nst_jax.compile_cache import compile_stats

    before = compile_stats()[0]
    F.stylize(np.random.default_rng(8).random((27, 45, 3)), model_file, size=None)
    assert compile_stats()[0] - before == 1


def test_network_matches_pytorch_fast_neural_style(model_file):
    """The same weights in the PyTorch example's architecture (experiments/torch_reference.py)."""
    import torch

    from experiments import torch_reference as tr

    ref = tr.TorchTransformNet(model_file).eval()
    params, _ = F.load_model(model_file)
    x = np.random.default_rng(5).random((2, 36, 44, 3)).astype(np.float32)
    with torch.no_grad():
        expect = tr.nhwc(ref(tr.nchw(x)))
    out = np.asarray(F.apply_net(params, jnp.asarray(x)))
    scale = np.abs(expect).max()
    assert np.abs(out - expect).max() < 1e-4 * scale, (np.abs(out - expect).max(), scale)


# --- the shipped models -----------------------------------------------------------------------------------

SHIPPED_STYLES = {"starry_night": "starry_night.jpg", "the_scream": "the_scream.jpg",
                  "shipwreck": "shipwreck.jpg", "woman_with_hat_matisse": "woman-with-hat-matisse.jpg"}


@pytest.mark.slow
@pytest.mark.skipif(not shared_image("starry_night.jpg").is_file(), reason="needs ../shared/images")
@pytest.mark.parametrize("model", sorted(SHIPPED_STYLES))
def test_shipped_network_moves_a_held_back_photo_toward_its_style(params, model):
    """Each shipped network on a photo outside its training set (ImageNet sample), on the yardstick of
    nst_jax.metrics: the Gram distance to its painting falls below 0.6x the photo's own, and the content
    distance stays below 0.8x a no-content control's (the painting resized to the photo's shape)."""
    from nst_jax import image as im
    from nst_jax import metrics

    if model not in F.shipped_styles():  # a one-style file or a style inside the shipped conditional network
        pytest.skip(f"{model} is not shipped in this version")
    style = im.resize_longest(im.load_image(shared_image(SHIPPED_STYLES[model])), 512)  # as in training
    grams = metrics.style_grams(params, style)
    content = im.resize_longest(im.load_image(shared_image("golden_gate.jpg")), 384)
    out, _ = F.stylize(content, model, size=None)
    assert out.shape == content.shape
    assert metrics.style_distance(params, out, grams) < 0.6 * metrics.style_distance(params, content, grams)
    control = im.resize(style, content.shape[:2])
    no_content = metrics.content_distance(params, control, content)
    assert metrics.content_distance(params, out, content) < 0.8 * no_content


def test_perceptual_loss_terms_match_float64_numpy(params):
    """Content = relative error at the content layers, style = mean relative Gram distance over the style
    layers, TV = mean squared neighbour difference: each written out in float64 from the VGG features."""
    rng = np.random.default_rng(5)
    style = rng.random((40, 36, 3)).astype(np.float32) ** 2
    content = rng.random((2, 32, 32, 3)).astype(np.float32)
    net = F.init_net(jax.random.key(2))
    frozen = {"vgg": params, "grams": FT.style_targets(params, jnp.asarray(style)[None])}
    total, terms = FT.perceptual_loss(net, frozen, jnp.asarray(content), content_weight=2.0, style_weight=3.0,
                                     tv_weight=4.0)
    y = np.asarray(F.apply_net(net, jnp.asarray(content)), np.float64)
    layers = FT.CONTENT_LAYERS + FT.STYLE_LAYERS
    fy = {k: np.asarray(v, np.float64) for k, v in vgg19_features(params, jnp.asarray(y, jnp.float32),
                                                                      layers).items()}
    fc = {k: np.asarray(v, np.float64)
          for k, v in vgg19_features(params, jnp.asarray(content), layers).items()}
    fs = {k: np.asarray(v, np.float64) for k, v in vgg19_features(params, jnp.asarray(style)[None],
                                                                      layers).items()}

    def gram(f):
        n, h, w, c = f.shape
        m = f.reshape(n, h * w, c)
        return np.einsum("npc,npd->ncd", m, m) / (c * h * w)

    def rel(a, b):
        return np.mean([np.sum((a[i] - b[min(i, len(b) - 1)]) ** 2) / np.sum(b[min(i, len(b) - 1)] ** 2)
                        for i in range(len(a))])

    c = np.mean([rel(fy[k], fc[k]) for k in FT.CONTENT_LAYERS])
    s = np.mean([rel(gram(fy[k]), gram(fs[k])) for k in FT.STYLE_LAYERS])
    tv = np.mean([(np.sum(np.diff(im_, axis=0) ** 2) + np.sum(np.diff(im_, axis=1) ** 2)) / im_.size
                  for im_ in y])
    np.testing.assert_allclose(float(terms["content"]), c, rtol=1e-3)
    np.testing.assert_allclose(float(terms["style"]), s, rtol=1e-3)
    np.testing.assert_allclose(float(terms["tv"]), tv, rtol=1e-4)
    np.testing.assert_allclose(float(total), 2 * c + 3 * s + 4 * tv, rtol=1e-3)


def test_style_norm_photos_divides_the_style_weight_by_the_photos_own_distance(params):
    """``style_norm="photos"``: the style weight is divided by the mean over the normalising crops of each
    crop's style distance to the painting, written out here in float64 from the VGG features."""
    from nst_jax.data import Batches

    rng = np.random.default_rng(11)
    photos = ArraySource([rng.random((40, 44, 3)).astype(np.float32) for _ in range(5)])
    style = rng.random((40, 36, 3)).astype(np.float32) ** 3
    task = FT.FastTask(params, style, photos, style_size=None, crop=32, resize=32, style_weight=21.3,
                      style_norm="photos")
    stream = Batches(photos, FT.STYLE_NORM_CROPS, 32, 32, seed=task.seed + 7919, prefetch=1)
    crops = np.asarray(next(stream), np.float64) / 255.0
    stream.close()

    def gram(f):
        m = f.reshape(-1, f.shape[-1])
        return m.T @ m / f.size

    fs = {k: np.asarray(v, np.float64)[0]
          for k, v in vgg19_features(params, jnp.asarray(style)[None], FT.STYLE_LAYERS).items()}
    fx = {k: np.asarray(v, np.float64)
          for k, v in vgg19_features(params, jnp.asarray(crops, jnp.float32), FT.STYLE_LAYERS).items()}
    d0 = np.mean([np.mean([np.sum((gram(fx[k][i]) - gram(fs[k])) ** 2) / np.sum(gram(fs[k]) ** 2)
                           for k in FT.STYLE_LAYERS]) for i in range(len(crops))])
    np.testing.assert_allclose(task.config["style_norm_value"], d0, rtol=1e-3)
    np.testing.assert_allclose(task.weights["style_weight"], 21.3 / d0, rtol=1e-3)
    assert task.config["style_weight_per_norm"] == 21.3
    plain = FT.FastTask(params, style, photos, style_size=None, crop=32, resize=32, style_weight=21.3)
    assert plain.weights["style_weight"] == 21.3 and "style_norm" not in plain.config
    with pytest.raises(NSTError, match="unknown style normalisation"):
        FT.FastTask(params, style, photos, style_size=None, crop=32, resize=32, style_norm="painting")
    # norms given (a continued network's own): used as they are, not measured on these photos
    kept = FT.FastTask(params, [style, style[::-1]], photos, style_name=["a", "b"], style_size=None, crop=32,
                       resize=32, style_weight=21.3, style_norm="photos", style_norm_value=[0.5, 2.0])
    assert kept.weights["style_weight"] == [42.6, 10.65] and kept.config["style_norm_value"] == [0.5, 2.0]
    with pytest.raises(NSTError, match="1 style norm"):
        FT.FastTask(params, [style, style], photos, style_name=["a", "b"], style_size=None, crop=32,
                    resize=32, style_norm="photos", style_norm_value=[0.5])


def test_a_continued_network_keeps_the_style_norms_it_was_trained_with():
    record = {"task_config": {"style_norm": "photos", "style_norm_value": [0.73, 0.95],
                              "styles": ["starry_night", "the_scream"]}}
    assert FT.continued_style_norms(record, ["starry_night", "the_scream"]) == [0.73, 0.95]
    assert FT.continued_style_norms(record, ["the_scream", "starry_night"]) is None      # another order
    assert FT.continued_style_norms(record, ["starry_night", "shipwreck"]) is None
    one = {"task_config": {"style_norm": "photos", "style_norm_value": 0.71, "style": "starry_night"}}
    assert FT.continued_style_norms(one, "starry_night") == 0.71
    assert FT.continued_style_norms({"task_config": {"style": "starry_night"}}, "starry_night") is None
    assert FT.continued_style_norms({}, "starry_night") is None


def _one_style_of(params4, weights):
    """The one-style network whose instance-norm parameters are the ``weights``-mix of a conditional
    network's (Dumoulin et al.'s definition of a style and of a blend)."""
    def pick(path, leaf):
        names = [str(getattr(k, "key", k)) for k in path]
        if names[-2].startswith("in") and names[-1] in ("scale", "bias"):
            return jnp.asarray(np.tensordot(np.asarray(weights, np.float64), np.asarray(leaf, np.float64), 1),
                               jnp.float32)
        return leaf
    return jax.tree_util.tree_map_with_path(pick, params4)


def test_conditional_network_is_a_one_style_network_per_style_and_blends_linearly():
    params4 = F.init_net(jax.random.key(4), 4)
    params4 = jax.tree_util.tree_map(  # distinct normalisation parameters per style
        lambda a: a + 0.3 * jax.random.normal(jax.random.key(a.size), a.shape) if a.ndim == 2 else a, params4)
    assert F.num_styles(params4) == 4 and F.num_styles(F.init_net(jax.random.key(0))) == 0
    x = jnp.asarray(np.random.default_rng(2).random((2, 24, 20, 3), np.float32))
    for w in ([0, 0, 1, 0], [0.25, 0, 0.75, 0]):
        got = np.asarray(F.apply_net(params4, x, jnp.asarray(w, jnp.float32)))
        want = np.asarray(F.apply_net(_one_style_of(params4, w), x))
        np.testing.assert_allclose(got, want, atol=2e-5)
    per_image = np.asarray(F.apply_net(params4, x, jax.nn.one_hot(jnp.asarray([3, 1]), 4)))
    np.testing.assert_allclose(per_image[1], np.asarray(F.apply_net(_one_style_of(params4, [0, 1, 0, 0]),
                                                                     x[1:]))[0], atol=2e-5)
    with pytest.raises(NSTError, match="holds 4 styles"):
        F.apply_net(params4, x)
    np.testing.assert_allclose(F.style_mix(["a", "b", "c"], {"a": 1, "c": 3}), [0.25, 0, 0.75])
    for spec, match in (({"d": 1}, "no style 'd'"), ({"a": -1}, "non-negative"), ({"a": 0}, "all be zero")):
        with pytest.raises(NSTError, match=match):
            F.style_mix(["a", "b", "c"], spec)


def test_conditional_loss_is_the_mean_of_each_example_against_its_own_style(params):
    rng = np.random.default_rng(8)
    styles = [rng.random((36, 40, 3)).astype(np.float32) ** k for k in (1, 2, 3)]
    content = jnp.asarray(rng.random((3, 32, 32, 3)).astype(np.float32))
    grams = [FT.style_targets(params, jnp.asarray(s)[None]) for s in styles]
    frozen = {"vgg": params, "grams": {k: jnp.concatenate([g[k] for g in grams]) for k in FT.STYLE_LAYERS}}
    net = FT.conditional_from([(F.init_net(jax.random.key(5)), {})], 3)
    net = jax.tree_util.tree_map(
        lambda a: a + 0.2 * jax.random.normal(jax.random.key(7), a.shape) if a.ndim == 2 else a, net)
    idx = jnp.asarray([2, 0, 2])
    sw = [3.0, 5.0, 7.0]
    loss = jax.jit(FT.perceptual_loss)  # one program a network shape, not hundreds of eager operations
    total, terms = loss(net, frozen, content, style=idx, style_weight=sw)
    parts = []
    for i, k in enumerate([2, 0, 2]):
        one = _one_style_of(net, np.eye(3)[k])
        t, tm = loss(one, {"vgg": params, "grams": grams[k]}, content[i:i + 1], style_weight=sw[k])
        parts.append((float(t), float(tm["style"])))
    np.testing.assert_allclose(float(total), np.mean([p[0] for p in parts]), rtol=2e-4)
    np.testing.assert_allclose(float(terms["style"]), np.mean([p[1] for p in parts]), rtol=2e-4)


def test_one_style_of_a_conditional_network_paints_as_it_does():
    """A shipped style name gives the four-painting network with that style chosen; one_style_of makes a
    one-style network of it (what `train fast --init-from starry_night` starts from) that paints the same
    picture as the conditional network with that style, and is refused without a chosen style."""
    names = [n for n, (_, inner) in F.shipped_styles().items() if inner is not None]
    if not names:
        pytest.skip("no conditional network is shipped in this version")
    params, meta = F.load_model(names[0])
    single, _ = FT.one_style_of(params, meta)
    assert F.num_styles(single) == 0 and F.num_styles(params) > 1
    x = jnp.asarray(np.random.default_rng(4).random((1, 32, 40, 3)), jnp.float32)
    onehot = jnp.asarray(F.style_mix(F.model_styles(meta), meta["style"]))[None]
    np.testing.assert_allclose(np.asarray(F.apply_net(single, x)),
                               np.asarray(F.apply_net(params, x, style=onehot)), rtol=1e-5, atol=1e-5)
    with pytest.raises(NSTError, match="paints 4 styles"):
        FT.one_style_of(params, {k: v for k, v in meta.items() if k != "style"})


def test_periodic_weight_adds_the_periodic_term_of_the_networks_pictures(params):
    """``periodic_weight``: the perceptual loss plus that times nst_jax.losses.periodic_peak_loss (tested
    against float64 NumPy in test_losses) of the network's pictures; 0 leaves the loss as it is."""
    from nst_jax import losses

    rng = np.random.default_rng(6)
    content = jnp.asarray(rng.random((1, 64, 64, 3)).astype(np.float32))
    net = F.init_net(jax.random.key(4))
    frozen = {"vgg": params, "grams": FT.style_targets(params, content)}
    loss = jax.jit(FT.perceptual_loss, static_argnames=("periodic_weight",))
    base, plain = loss(net, frozen, content)
    total, terms = loss(net, frozen, content, periodic_weight=2.0)
    assert "periodic" not in plain
    expected = float(losses.periodic_peak_loss(F.apply_net(net, content)))
    assert float(terms["periodic"]) == pytest.approx(expected, rel=1e-4)
    assert float(total) == pytest.approx(float(base) + 2.0 * expected, rel=1e-5)
