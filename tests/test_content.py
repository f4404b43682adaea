"""Content representations (nst_jax.content) against independent references: STROTSS's self-similarity
against float64 NumPy (all positions, and the sampled positions shared by picture and photo; its hypercolumns
against SciPy's bilinear interpolation), the feature
distance as before; a content term written in the test runs through the Python API; bad names refused."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from nst_jax import content, gatys
from nst_jax.errors import NSTError
from nst_jax.vgg import vgg19_features


def features(seed, h, w, c):
    rng = np.random.default_rng(seed)
    return (np.abs(rng.normal(0.3, 1.0, (1, h, w, c))) + 0.05).astype(np.float32)  # no all-zero position


def self_similarity_float64(x, c):
    def d(a):
        a = np.asarray(a, np.float64)
        n = a / np.linalg.norm(a, axis=1, keepdims=True)
        m = 1.0 - n @ n.T
        return m / m.sum(axis=0, keepdims=True)

    return np.mean(np.abs(d(x) - d(c)))


def test_self_similarity_against_float64():
    f, t = features(0, 9, 11, 6), features(1, 9, 11, 6)
    got = content.self_similarity_distance(jnp.asarray(f), jnp.asarray(t), jax.random.key(0))
    assert float(got) == pytest.approx(self_similarity_float64(f.reshape(-1, 6), t.reshape(-1, 6)), rel=1e-5)
    # a map with more positions than one estimate takes: the same sampled positions in picture and photo
    f, t = features(2, 40, 30, 4), features(3, 40, 30, 4)
    key = jax.random.key(5)
    idx = np.asarray(jax.random.choice(key, 1200, (content.SELF_SIMILARITY_POSITIONS,), replace=False))
    got = content.self_similarity_distance(jnp.asarray(f), jnp.asarray(t), key)
    expected = self_similarity_float64(f.reshape(-1, 4)[idx], t.reshape(-1, 4)[idx])
    assert float(got) == pytest.approx(expected, rel=1e-4)
    assert float(content.self_similarity_distance(jnp.asarray(f), jnp.asarray(f), key)) == pytest.approx(0.0,
                                                                                                         abs=1e-7)
    # it sees only which positions resemble which: a positive per-channel-free rescaling changes nothing
    assert float(content.self_similarity_distance(jnp.asarray(3.0 * f), jnp.asarray(t), key)) == \
        pytest.approx(float(got), rel=1e-5)


def hypercolumns_float64(maps, grid):
    """Every position of ``grid``'s hypercolumn: each map interpolated by SciPy (linear spline, edges
    extended) at the position's centre on the map's own grid, the maps concatenated."""
    gy, gx = np.meshgrid(np.arange(grid[0]), np.arange(grid[1]), indexing="ij")
    cols = []
    for m in maps:
        m = np.asarray(m[0], np.float64)
        y = (gy.ravel() + 0.5) * m.shape[0] / grid[0] - 0.5
        x = (gx.ravel() + 0.5) * m.shape[1] / grid[1] - 0.5
        cols.append(np.stack([ndimage.map_coordinates(m[..., k], [y, x], order=1, mode="nearest")
                              for k in range(m.shape[-1])], axis=-1))
    return np.concatenate(cols, axis=-1)


def test_self_similarity_over_hypercolumns_against_float64():
    """STROTSS's term over several layers at once: the positions of the finest grid, each layer's features
    interpolated there and concatenated, against SciPy; the term is one distance, not a sum over layers."""
    shapes = ((12, 10, 3), (6, 5, 4), (3, 3, 5))  # the second map has half the first's grid, the third not
    f = tuple(features(10 + i, *s) for i, s in enumerate(shapes))
    t = tuple(features(20 + i, *s) for i, s in enumerate(shapes))
    hf, ht = hypercolumns_float64(f, (12, 10)), hypercolumns_float64(t, (12, 10))
    np.testing.assert_allclose(np.asarray(content.hypercolumns(tuple(map(jnp.asarray, f)), jnp.arange(120))),
                               hf, rtol=1e-5, atol=1e-6)
    got = content.self_similarity_distance(tuple(map(jnp.asarray, f)), tuple(map(jnp.asarray, t)),
                                           jax.random.key(0))
    assert float(got) == pytest.approx(self_similarity_float64(hf, ht), rel=1e-5)
    assert float(got) != pytest.approx(sum(self_similarity_float64(a.reshape(-1, a.shape[-1]),
                                                                   b.reshape(-1, b.shape[-1]))
                                           for a, b in zip(f, t, strict=True)), rel=1e-2)


def test_a_joint_content_term_takes_every_layer_at_once(params):
    """A ``joint`` representation's distance is called once with the maps of all its layers, in order (a
    hypercolumn term has them together); written as the sum of the feature distances it is the objective's
    per-layer feature term."""
    calls = []

    def distance(fs, ts, key):
        calls.append(tuple(f.shape[-1] for f in fs))
        return sum(jnp.mean((f - t) ** 2) for f, t in zip(fs, ts, strict=True))

    joint = content.ContentLoss(name="joint", distance=distance, joint=True)
    rng = np.random.default_rng(7)
    photo, painting, x = (rng.random((1, 32, 32, 3), dtype=np.float32) for _ in range(3))
    got = {}
    for rep in (content.FEATURE, joint):
        cfg = gatys.Config(gatys.Objective(content_layers=("relu2_1", "relu4_2"), content_loss=rep))
        t = gatys.compute_targets(params, photo, [painting], (1.0,), cfg)
        w = gatys.LossWeights(1.0, 0.0, 0.0).as_arrays(5)
        got[rep.name] = float(gatys.gatys_loss(params, jnp.asarray(x), t, w, cfg)[1]["content"])
    assert calls == [(128, 512)]
    assert got["joint"] == pytest.approx(got["feature"], rel=1e-6)


def test_feature_distance_is_the_mean_squared_error():
    f, t = features(4, 5, 6, 3), features(5, 5, 6, 3)
    expected = np.mean((np.asarray(f, np.float64) - t) ** 2)
    assert float(content.FEATURE.distance(jnp.asarray(f), content.FEATURE.target(jnp.asarray(t)), None)) == \
        pytest.approx(expected, rel=1e-6)
    assert gatys.Objective().content_loss is content.FEATURE  # the default objective is Gatys et al.'s


@pytest.mark.slow
def test_a_content_term_of_ones_own_through_the_api(params):
    """A content term written here, not in the package: the photo's relu4_2 channel means, kept from a noise
    start with no style; its target is computed by the package from the photo and reported by name."""
    means = content.ContentLoss(name="channel-means", target=lambda f: jnp.mean(f, axis=(1, 2)),
                                distance=lambda f, t, key: jnp.mean((jnp.mean(f, axis=(1, 2)) - t) ** 2))
    rng = np.random.default_rng(6)
    yy, xx = np.mgrid[0:48, 0:48] / 48.0
    photo = np.stack([xx, yy, 0.5 + 0.4 * np.sin(9 * xx)], -1).astype(np.float32)
    noise = rng.random(photo.shape).astype(np.float32)
    x, report = gatys.stylize(photo, noise, size=48, iters=30, init=noise, content_loss=means,
                              style_weight=0.0, tv_weight=0.0, content_weight=1.0, weights=params)
    assert report["content_loss"] == "channel-means"
    f = jax.jit(lambda y: jnp.mean(vgg19_features(params, y[None], ("relu4_2",))["relu4_2"], axis=(1, 2)))
    target = np.asarray(f(jnp.asarray(photo)))
    before, after = (np.abs(np.asarray(f(jnp.asarray(y))) - target).mean() for y in (noise, x))
    assert after < 0.5 * before, (before, after)  # 557 -> 212 measured


def test_bad_content_losses():
    with pytest.raises(NSTError, match="content loss must be one of feature, self-similarity"):
        gatys.StylizeConfig(content_loss="strotss")
    with pytest.raises(NSTError, match="needs a target"):
        content.ContentLoss(distance=None)
    # the solver follows the content representation's wish, unless one is named
    assert gatys.StylizeConfig(content_loss="self-similarity").solver_name == "adam"
    assert gatys.StylizeConfig(content_loss="self-similarity", optimizer="lbfgs").solver_name == "lbfgs"
    assert gatys.StylizeConfig().solver_name == "lbfgs"
    # and the content layers, unless some are named
    layers = gatys.StylizeConfig(content_loss="self-similarity").content_layers
    assert layers == content.SELF_SIMILARITY_LAYERS
    assert gatys.StylizeConfig(content_loss="self-similarity", content_layers=["relu4_2"]).content_layers == \
        ("relu4_2",)
    assert gatys.StylizeConfig().content_layers == gatys.CONTENT_LAYERS
