"""The pure-function VGG-19 against an independent PyTorch VGG-19 on the same real weights."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import nst_jax
from experiments import torch_reference as tr
from nst_jax import NSTError, vgg
from nst_jax import weights as W

LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1")


def rel_err(a, b):
    """max |a - b| / max |b| over the whole activation (elementwise ratios blow up near ReLU zeros)."""
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def batch(photo, n, h, w, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        y = rng.integers(0, photo.shape[0] - h)
        x = rng.integers(0, photo.shape[1] - w)
        out.append(photo[y:y + h, x:x + w])
    return np.stack(out)


# one compiled program a case (eagerly, Winograd's slices and products compile one small program each)
features = jax.jit(nst_jax.vgg19_features, static_argnames=("layers", "pool", "conv"))


SHAPES = [(2, 70, 90), (1, 64, 64), (1, 33, 47)]


# Winograd (a program that compiles in ~3x lax.conv's time) on a batch with even sides and one image with
# odd ones, with each pooling once: the pooling after a convolution does not depend on how the convolution
# was computed
@pytest.mark.parametrize("shape,pool,conv", [(s, p, "direct") for s in SHAPES for p in ("max", "avg")]
                         + [(SHAPES[0], "max", "winograd"), (SHAPES[2], "avg", "winograd")])
def test_matches_pytorch_on_real_weights(params, torch_vgg, photo, pool, shape, conv):
    x = batch(photo, *shape)
    ours = features(params, x, LAYERS, pool=pool, conv=conv)
    ref = torch_vgg(pool)
    with torch.no_grad():
        theirs = ref(tr.nchw(x), LAYERS)
    for name in LAYERS:
        a, b = np.asarray(ours[name]), tr.nhwc(theirs[name])
        assert a.shape == b.shape, name
        assert rel_err(a, b) <= 1e-4, (name, rel_err(a, b))


def test_conv_layers_are_pre_relu_and_pools_floor(params, photo):
    x = batch(photo, 1, 37, 45)
    f = nst_jax.vgg19_features(params, x, ("conv1_1", "relu1_1", "pool1", "pool2"))
    assert np.asarray(f["conv1_1"]).min() < 0 <= np.asarray(f["relu1_1"]).min()
    np.testing.assert_allclose(np.maximum(f["conv1_1"], 0), f["relu1_1"], rtol=0, atol=0)
    assert f["pool1"].shape == (1, 18, 22, 64) and f["pool2"].shape == (1, 9, 11, 128)


def test_returns_exactly_the_requested_layers(params, photo):
    f = nst_jax.vgg19_features(params, batch(photo, 1, 32, 32), ["relu3_1", "conv1_2"])
    assert set(f) == {"relu3_1", "conv1_2"}


def _count_convs(jaxpr):
    """Convolutions in a jaxpr, including those inside nested (closed) jaxprs such as pjit/remat."""
    n = 0
    for eqn in jaxpr.eqns:
        n += eqn.primitive.name == "conv_general_dilated"
        for v in eqn.params.values():
            inner = getattr(v, "jaxpr", v)
            if hasattr(inner, "eqns"):
                n += _count_convs(inner)
    return n


@pytest.mark.parametrize("layer,convs", [("relu2_1", 3), ("conv1_1", 1), ("pool3", 8), ("relu5_1", 13)])
def test_stops_after_the_deepest_requested_layer(params, layer, convs):
    x = np.zeros((1, 32, 32, 3), np.float32)
    jaxpr = jax.make_jaxpr(lambda im: nst_jax.vgg19_features(params, im, [layer], conv="direct"))(x)
    assert _count_convs(jaxpr.jaxpr) == convs
    # the Winograd path: the 64-channel convolutions of block 1 stay lax.conv, and nothing is
    # computed past the requested layer (only its (4, 4, Cin, Cout) kernel transforms would show)
    if layer in ("relu2_1", "conv1_1"):
        auto = jax.make_jaxpr(lambda im: nst_jax.vgg19_features(params, im, [layer]))(x)
        assert _count_convs(auto.jaxpr) == convs


def test_auto_conv_is_winograd_on_cpu_unless_the_environment_says_otherwise(params, monkeypatch):
    """conv="auto": on CPU the 256-channel layers are Winograd products, and the 128-channel ones where the
    picture is at most 128 x 128 (of the 5 convolutions to relu3_1, lax.conv keeps conv1_1 and conv1_2 at
    32 px, and block 2 too at 288 px, where block 2 is 144 x 144); $NST_JAX_CONV forces one algorithm or is
    refused."""
    x = np.zeros((1, 32, 32, 3), np.float32)

    def convs(dtype=jnp.float32, im=x):
        jaxpr = jax.make_jaxpr(lambda im: nst_jax.vgg19_features(params, im, ["relu3_1"], dtype=dtype))(im)
        return _count_convs(jaxpr.jaxpr)

    monkeypatch.delenv("NST_JAX_CONV", raising=False)
    assert jax.default_backend() != "cpu" or convs() == 2
    assert jax.default_backend() != "cpu" or convs(im=np.zeros((1, 288, 288, 3), np.float32)) == 4
    assert jax.default_backend() != "cpu" or convs(jnp.bfloat16) == 4  # conv3_1 as shifted products
    monkeypatch.setenv("NST_JAX_CONV", "direct")
    assert convs() == 5 and convs(jnp.bfloat16) == 5
    monkeypatch.setenv("NST_JAX_CONV", "winograd")
    assert convs() == 0
    monkeypatch.setenv("NST_JAX_CONV", "shifted")
    assert convs() == 0
    monkeypatch.setenv("NST_JAX_CONV", "fft")
    with pytest.raises(nst_jax.NSTError, match="NST_JAX_CONV must be"):
        convs()


def _conv_f64(x, k):
    """A stride-1 "SAME" 3x3 convolution (NHWC, HWIO) by its definition, in float64."""
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    h, w = x.shape[1:3]
    return sum(np.einsum("nhwc,co->nhwo", xp[:, a:a + h, b:b + w], k[a, b])
               for a in range(3) for b in range(3))


@pytest.mark.parametrize("shape", [(1, 6, 8), (2, 7, 5)])
def test_winograd_cotangents_match_the_definition(shape):
    """Winograd's explicit backward pass (the flipped kernel's transform, and the kernel's cotangent) against
    float64 NumPy: the value, d<r, conv(x, k)>/dx and /dk, at even and odd sizes."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((*shape, 4)).astype(np.float32)
    k = rng.standard_normal((3, 3, 4, 3)).astype(np.float32)
    r = rng.standard_normal((*shape, 3)).astype(np.float32)
    f = jax.jit(lambda x, k: jnp.sum(vgg.conv3x3(x, k, conv="winograd") * r))
    value, (dx, dk) = jax.value_and_grad(f, argnums=(0, 1))(x, k)
    x64, k64, r64 = x.astype(np.float64), k.astype(np.float64), r.astype(np.float64)
    ref_dx = _conv_f64(r64, k64[::-1, ::-1].swapaxes(2, 3))
    rp = np.pad(x64, ((0, 0), (1, 1), (1, 1), (0, 0)))
    h, w = shape[1:]
    ref_dk = np.stack([np.stack([np.einsum("nhwc,nhwo->co", rp[:, a:a + h, b:b + w], r64) for b in range(3)])
                       for a in range(3)])
    products = _conv_f64(x64, k64) * r64
    assert abs(float(value) - products.sum()) <= 1e-5 * np.abs(products).sum()
    assert rel_err(np.asarray(dx), ref_dx) <= 1e-5
    assert rel_err(np.asarray(dk), ref_dk) <= 1e-5


@pytest.mark.parametrize("conv,pool", [("direct", "max"), ("direct", "avg"), ("winograd", "max")])
def test_input_gradient_matches_pytorch(params, torch_vgg, photo, conv, pool):
    """What Gatys needs: d(sum of squared features)/d(image), against torch.autograd.

    Max pooling is checked on noise: on a photo's flat regions 2x2 windows are near-ties, and a
    1e-6 difference in any convolution algorithm (ours or oneDNN's) moves the argmax and so the
    gradient.  Average pooling has no such discontinuity and is checked on the photo.
    """
    if pool == "max":
        x = np.random.default_rng(3).uniform(size=(1, 48, 40, 3)).astype(np.float32)
    else:
        x = batch(photo, 1, 48, 40, seed=3)
    layers = ("relu1_1", "relu3_1", "relu5_1")

    def f(im, p):  # the weights an argument, not ~80 MB of constants in the program
        feats = nst_jax.vgg19_features(p, im, layers, pool=pool, conv=conv, remat=conv == "winograd")
        return sum(jax.numpy.mean(v ** 2) for v in feats.values())

    g = np.asarray(jax.jit(jax.grad(f))(x, params))
    xt = tr.nchw(x).requires_grad_(True)
    out = torch_vgg(pool)(xt, layers)
    (gt,) = torch.autograd.grad(sum((v ** 2).mean() for v in out.values()), xt)
    assert rel_err(g, tr.nhwc(gt)) <= 1e-4


def test_jit_and_grad(params, photo):
    x = batch(photo, 1, 32, 32)
    f = jax.jit(lambda im: nst_jax.vgg19_features(params, im, ["relu3_1"])["relu3_1"].sum())
    g = jax.grad(lambda im: nst_jax.vgg19_features(params, im, ["relu3_1"])["relu3_1"].sum())(x)
    assert np.isfinite(float(f(x))) and g.shape == x.shape and np.abs(g).max() > 0


def test_torchvision_pth_round_trip(tmp_path, photo):
    torch.manual_seed(0)
    feats = tr.torchvision_features()
    for prefix, sd in [("features.", {f"features.{k}": v for k, v in feats.state_dict().items()}),
                       ("", feats.state_dict())]:
        path = tmp_path / f"vgg19{prefix or '_features'}.pth"
        sd = dict(sd)
        if prefix:  # a full vgg19 state_dict also carries the classifier, which we ignore
            sd["classifier.0.weight"] = torch.zeros(4, 4)
        torch.save(sd, path)
        p = nst_jax.vgg19_params(path)
        np.testing.assert_allclose(p["preprocess"]["std"], tr.TORCHVISION_STD, rtol=1e-6)
        x = batch(photo, 2, 40, 52)
        ours = nst_jax.vgg19_features(p, x, ["relu3_1", "pool2"])
        with torch.no_grad():
            r31 = tr.run_torchvision(feats, tr.nchw(x), 11)  # index 11 = ReLU after conv3_1
            p2 = tr.run_torchvision(feats, tr.nchw(x), 9)
        assert rel_err(np.asarray(ours["relu3_1"]), tr.nhwc(r31)) <= 1e-4
        assert rel_err(np.asarray(ours["pool2"]), tr.nhwc(p2)) <= 1e-4
        # and through our own .npz
        npz = W.convert(path, tmp_path / "tv.npz")
        q = nst_jax.vgg19_params(npz)
        for name in W.CONV_NAMES:
            np.testing.assert_array_equal(q[name]["kernel"], p[name]["kernel"])


def test_h5_to_npz_conversion_is_exact(tmp_path, h5_path, params):
    dst = W.convert(h5_path, tmp_path / "caffe.npz")
    q = nst_jax.vgg19_params(dst)
    for a, b in zip(jax.tree_util.tree_leaves(q), jax.tree_util.tree_leaves(params), strict=True):
        np.testing.assert_array_equal(a, b)


def test_image_too_small_is_a_clear_error(params):
    with pytest.raises(NSTError, match="too small"):
        nst_jax.vgg19_features(params, np.zeros((1, 15, 40, 3), np.float32), ["relu5_1"])
    nst_jax.vgg19_features(params, np.zeros((1, 16, 16, 3), np.float32), ["relu5_1"])


def test_unknown_layer(params):
    with pytest.raises(NSTError, match="unknown VGG-19 layer"):
        nst_jax.vgg19_features(params, np.zeros((1, 16, 16, 3), np.float32), ["relu6_1"])


def test_min_size():
    assert vgg.min_size(["relu1_1"]) == 1 and vgg.min_size(["pool1"]) == 2
    assert vgg.min_size(["relu5_1"]) == 16 and vgg.min_size(["pool5"]) == 32


def test_winograd_kernel_transform_on_the_host_and_in_a_program():
    """G g G^T (F(4x4, 3x3) at the points 0, 2, 1/2, -2, -1/2 and infinity, G built here from its
    definition: row p evaluates the kernel's polynomial g0 + g1 p + g2 p^2 at p, scaled), against float64: on
    the host in float32 (exact products, rounded sums) and traced in a program."""
    points = [0, 2, 0.5, -2, -0.5]
    scale = np.array([1 / 4, 1 / 60, 1 / 15, 1 / 60, 1 / 15, 1 / 4])  # what B^T's rows leave to G
    g = np.array([[1, p, p * p] for p in points] + [[0, 0, 1]]) * scale[:, None]
    k = np.random.default_rng(7).standard_normal((3, 3, 5, 6)).astype(np.float32)
    ref = np.einsum("ia,abco,jb->ijco", g, k.astype(np.float64), g)
    host = vgg.winograd_kernel(k)
    assert host.dtype == np.float32 and host.shape == (6, 6, 5, 6)
    assert rel_err(host, ref) <= 2.5e-7
    assert rel_err(np.asarray(jax.jit(vgg.winograd_kernel)(k)), ref) <= 2.5e-7
