"""SANet (Park & Lee 2019): the model, its loss and gradient against the independent PyTorch reference
(experiments/torch_reference.py, written from the paper apart from this code), the blocked attention against
the whole one, inference through the run contract."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nst_jax import adain as A
from nst_jax import sanet as S
from nst_jax import sanet_train as ST
from nst_jax.errors import NSTError
from nst_jax.nets import path_key


def random_params(seed=0, scale=0.02):
    """Every transform parameter random (the initial ones are partly zero and identity: too easy to match)
    and the shipped AdaIN decoder (a random one makes pictures far outside [0, 1] and a loss of 1e4, whose
    float32 gradient is too noisy to compare)."""
    key = jax.random.key(seed)
    params = S.init_params(key, A.load_decoder()[0])
    leaves, tree = jax.tree_util.tree_flatten(params["transform"])
    keys = jax.random.split(key, len(leaves))
    params["transform"] = jax.tree_util.tree_unflatten(
        tree, [scale * jax.random.normal(k, a.shape) for k, a in zip(keys, leaves, strict=True)])
    return params


def flat(tree) -> dict:
    return {path_key(p): np.asarray(v, np.float32) for p, v in jax.tree_util.tree_leaves_with_path(tree)}


@pytest.fixture(scope="module")
def model():
    return random_params()


@pytest.fixture(scope="module")
def torch_sanet(h5_path, model):
    from experiments import torch_reference as tr

    return tr.TorchSANet(h5_path, A.CHANNEL_MEANS_FILE, flat(model)).double()  # float64: the truth


def pictures(seed=1, n=2, content=(32, 48), style=(48, 32)):
    rng = np.random.default_rng(seed)
    return (rng.random((n,) + content + (3,)).astype(np.float32),
            (rng.random((n,) + style + (3,)).astype(np.float32) ** 2))


def test_attention_in_blocks_equals_the_whole(model):
    rng = np.random.default_rng(2)
    c = jnp.asarray(rng.random((2, 5, 7, 512)), jnp.float32)
    s = jnp.asarray(rng.random((1, 4, 6, 512)), jnp.float32)
    p = model["transform"]["sanet4_1"]
    whole = S.attention(p, c, s, block=35)
    for block in (1, 8, 34, None):  # 35 positions: blocks with padding, one block short of them all, auto
        np.testing.assert_allclose(S.attention(p, c, s, block=block), whole, rtol=1e-4, atol=1e-4)


def test_attention_closed_form_float64(model):
    """One module against NumPy float64, written from the formula."""
    p = {k: {n: np.asarray(v, np.float64) for n, v in d.items()}
         for k, d in model["transform"]["sanet5_1"].items()}
    rng = np.random.default_rng(3)
    c, s = rng.random((1, 3, 4, 512)), rng.random((1, 2, 5, 512))

    def norm(f):
        m = f.mean(axis=(1, 2), keepdims=True)
        return (f - m) / np.sqrt(f.var(axis=(1, 2), keepdims=True) + 1e-5)

    q = (norm(c) @ p["f"]["kernel"] + p["f"]["bias"]).reshape(12, 512)
    k = (norm(s) @ p["g"]["kernel"] + p["g"]["bias"]).reshape(10, 512)
    v = (s @ p["h"]["kernel"] + p["h"]["bias"]).reshape(10, 512)
    e = np.exp(q @ k.T - (q @ k.T).max(axis=1, keepdims=True))
    o = (e / e.sum(axis=1, keepdims=True)) @ v @ p["out"]["kernel"] + p["out"]["bias"]
    expect = o.reshape(1, 3, 4, 512) + c
    got = S.attention(model["transform"]["sanet5_1"], jnp.asarray(c, jnp.float32),
                      jnp.asarray(s, jnp.float32))
    np.testing.assert_allclose(np.asarray(got), expect, rtol=1e-4, atol=1e-4)


def test_loss_and_gradient_match_pytorch(params, model, torch_sanet):
    """The paper's loss, its four terms and its gradient with respect to every transform and decoder
    parameter, against PyTorch's autograd in float64 on the same weights and crops.  (PyTorch in float32 is
    itself 1e-4..7e-4 of the largest gradient away from float64 on the attention's projections: ours is as
    close.)  The key projection's bias ``g`` has no gradient at all (it adds the same value to every logit
    of a softmax row): both sides must find it nothing."""
    import torch

    from experiments import torch_reference as tr

    content, style = pictures(style=(32, 48))  # one shape, as training crops: one batch through the decoder
    loss = jax.jit(jax.value_and_grad(ST.sanet_loss, has_aux=True))  # the VGG-19 an argument, not constants
    (total, terms), grads = loss(model, params, jnp.asarray(content), jnp.asarray(style))
    torch_sanet.zero_grad()
    ref_total, ref_terms = torch_sanet.loss(tr.nchw(content).double(), tr.nchw(style).double())
    ref_total.backward()
    with torch.no_grad():
        np.testing.assert_allclose(float(total), float(ref_total), rtol=1e-5)
        for k in ("content", "style", "identity1", "identity2"):
            np.testing.assert_allclose(float(terms[k]), float(ref_terms[k]), rtol=1e-4, err_msg=k)
    expect, got = torch_sanet.grads(), flat(grads)
    assert set(got) == set(expect)
    for k, g in got.items():
        if k.endswith("/g/bias"):
            f_scale = np.abs(expect[k.replace("/g/", "/f/")]).max()
            assert np.abs(expect[k]).max() < 1e-9 * f_scale and np.abs(g).max() < 1e-3 * f_scale, k
            continue
        scale = np.abs(expect[k]).max()
        assert scale > 0, k
        assert np.abs(g - expect[k]).max() <= 2e-3 * scale, (k, np.abs(g - expect[k]).max(), scale)


def test_stylize_matches_pytorch(params, model, torch_sanet):
    """Inference through the run contract (sides a multiple of 16: no padding on either side), whole and in
    bands, against the reference's forward pass."""
    import torch

    from experiments import torch_reference as tr

    content, style = pictures(4, n=1, content=(64, 48), style=(32, 48))
    with torch.no_grad():
        expect = tr.nhwc(torch_sanet.stylize(tr.nchw(content).double(), tr.nchw(style).double()))[0]
    for tile in ("none", 32):
        out, report = S.stylize(content[0], style[0], model=model, weights=params, size=None, style_size=None,
                                tile=tile)
        assert np.abs(out - expect).max() < 2e-3, (tile, np.abs(out - expect).max())
    assert report["method"] == "sanet"


def test_alpha_blend_and_mask(params, model):
    """alpha 0 is the photo transformed by itself; one style blended with itself is that style; a mask puts
    each style in its region (the halves differ as the two single-style pictures do)."""
    content, style = pictures(5, n=1, content=(48, 128), style=(32, 32))
    c, s = content[0], style[0]
    kw = dict(model=model, weights=params, size=None, style_size=None, tile="none")
    one, _ = S.stylize(c, s, **kw)
    same, _ = S.stylize(c, [s, s], style_blend=(0.3, 0.7), **kw)
    np.testing.assert_allclose(same, one, atol=1e-5)
    itself, _ = S.stylize(c, c, **kw)
    zero, _ = S.stylize(c, s, alpha=0.0, **kw)
    np.testing.assert_allclose(zero, itself, atol=1e-5)
    other = np.ascontiguousarray(s[::-1, ::-1] ** 0.3)
    mask = np.zeros((48, 128), np.float32)
    mask[:, :64] = 1.0
    masked, _ = S.stylize(c, [s, other], mask=mask, **kw)
    two, _ = S.stylize(c, other, **kw)
    # away from the border (the decoder sees about 30 px around a pixel) each side is its own style's picture
    np.testing.assert_allclose(masked[:, :16], one[:, :16], atol=1e-5)
    np.testing.assert_allclose(masked[:, -16:], two[:, -16:], atol=1e-5)
    assert np.abs(one - two).max() > 0.01


def test_model_file_round_trip_and_bad_files(tmp_path, model):
    path = S.save_model(tmp_path / "m.npz", model, {"task_config": {"upsample": "bilinear"}})
    params, meta = S.load_model(path)
    assert A.upsampling(meta) == "bilinear"
    np.testing.assert_allclose(params["transform"]["merge"]["bias"], model["transform"]["merge"]["bias"],
                               atol=1e-3)
    with pytest.raises(NSTError, match="does not exist"):
        S.load_model(tmp_path / "none.npz")
    A.save_decoder(tmp_path / "decoder.npz", model["decoder"])
    with pytest.raises(NSTError):
        S.load_model(tmp_path / "decoder.npz")


def test_untrained_transform_passes_the_content_through():
    """The initial transform (zero output projections, identity merge) is relu4_1 + upsampled relu5_1
    whatever the style: each module returns its residual."""
    p = S.init_transform(jax.random.key(0))
    rng = np.random.default_rng(7)
    c4, c5 = rng.random((1, 4, 6, 512)), rng.random((1, 2, 3, 512))
    s4, s5 = rng.random((1, 2, 2, 512)), rng.random((1, 1, 1, 512))
    got = S.transform(p, *(jnp.asarray(a, jnp.float32) for a in (c4, s4, c5, s5)))
    expect = c4 + np.repeat(np.repeat(c5, 2, axis=1), 2, axis=2)
    np.testing.assert_allclose(np.asarray(got), expect, rtol=1e-5, atol=1e-5)


def test_mask_lands_where_it_is_on_a_padded_picture():
    """A 40-row picture is padded to 48 rows (a multiple of 16); the mask, inside above row 32, must cover
    relu4_1's first four rows (32 px) and not the fifth, as it would if stretched over the padded map."""
    from nst_jax.decoder import mask_on_features

    mask = np.zeros((40, 48), np.float32)
    mask[:32] = 1.0
    grid = mask_on_features(mask, (40, 48), 16, 8)
    assert grid.shape == (6, 6)
    np.testing.assert_array_equal(grid[:, 0], [1, 1, 1, 1, 0, 0])
    small = mask_on_features(mask[::2, ::2], (40, 48), 16, 8)  # a mask of another size: resized first
    np.testing.assert_array_equal(small, grid)
