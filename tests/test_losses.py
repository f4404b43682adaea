"""Each loss against a float64 NumPy computation written out directly."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nst_jax import losses

rng = np.random.default_rng(0)
F = rng.normal(size=(2, 5, 7, 4)).astype(np.float32)
T = rng.normal(size=(2, 5, 7, 4)).astype(np.float32)


def np_gram(f):
    f = f.astype(np.float64)
    n, h, w, c = f.shape
    out = np.zeros((n, c, c))
    for i in range(n):
        m = f[i].reshape(h * w, c)
        out[i] = m.T @ m / (c * h * w)
    return out


@pytest.mark.parametrize("f", [F, F[:1]], ids=["batch2", "batch1"])  # batch 1 has its own code path
def test_gram_matrix(f):
    np.testing.assert_allclose(losses.gram_matrix(f), np_gram(f), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("f", [F, F[:1]], ids=["batch2", "batch1"])
def test_gram_matrix_asks_for_full_float32_products(f):
    """XLA:CPU computes float32 products exactly whatever the precision, so the numbers above cannot show
    it: on a GPU the default is TensorFloat-32.  The compiled program (forward and gradient) must carry
    HIGHEST precision on every product, or GPU Gram matrices lose ~3 decimal digits."""
    import re

    import jax

    fwd = jax.jit(losses.gram_matrix).lower(f).as_text()
    bwd = jax.jit(jax.grad(lambda x: losses.gram_matrix(x).sum())).lower(f).as_text()
    for text in (fwd, bwd):
        dots = re.findall(r"stablehlo\.dot_general[^\n]*", text)
        assert dots, text
        assert all("precision = [HIGHEST, HIGHEST]" in d for d in dots), dots


@pytest.mark.parametrize("f", [F, F[:1]], ids=["batch2", "batch1"])
def test_gram_matrix_gradient(f):
    """d/dF sum(G * M) = F (M + M^T) / (C H W), per image."""
    import jax

    n, h, w, c = f.shape
    m = rng.normal(size=(n, c, c))
    g = jax.grad(lambda x: (losses.gram_matrix(x) * m.astype(np.float32)).sum())(f)
    ref = np.einsum("npc,ncd->npd", f.reshape(n, h * w, c).astype(np.float64),
                    m + m.transpose(0, 2, 1)).reshape(f.shape) / (c * h * w)
    np.testing.assert_allclose(g, ref, rtol=1e-4, atol=1e-6)


def test_content_loss():
    ref = np.mean((F.astype(np.float64) - T) ** 2)
    np.testing.assert_allclose(losses.content_loss(F, T), ref, rtol=1e-5)


def test_style_loss():
    g, t = np_gram(F), np_gram(T)
    ref = np.mean((g - t) ** 2)
    np.testing.assert_allclose(losses.style_loss(losses.gram_matrix(F), losses.gram_matrix(T)), ref,
                               rtol=1e-4)


def test_style_loss_is_mmd_with_quadratic_kernel():
    """Li et al. 2017: matching Gram matrices is minimising the (biased) squared MMD between the two
    sets of feature vectors with the kernel k(x, y) = (x.y)^2.  With our normalisation (Gram / (C*M),
    mean over C^2 entries) style_loss = MMD^2 / C^4, for any numbers of positions M_x, M_s."""
    x = rng.normal(size=(1, 6, 5, 8))  # 30 positions
    s = rng.normal(loc=0.3, size=(1, 4, 9, 8))  # 36 positions
    c = x.shape[-1]
    fx, fs = x.reshape(-1, c), s.reshape(-1, c)

    def k(a, b):
        return (a @ b.T) ** 2

    mmd2 = k(fx, fx).mean() + k(fs, fs).mean() - 2 * k(fx, fs).mean()
    loss = losses.style_loss(losses.gram_matrix(x.astype(np.float32)),
                             losses.gram_matrix(s.astype(np.float32)))
    np.testing.assert_allclose(float(loss), mmd2 / c ** 4, rtol=1e-4)


@pytest.mark.parametrize("kind", ["l1", "l2"])
def test_total_variation(kind):
    x = F.astype(np.float64)
    per_image = []
    for im in x:
        d = [im[i + 1, j] - im[i, j] for i in range(im.shape[0] - 1) for j in range(im.shape[1])]
        d += [im[i, j + 1] - im[i, j] for i in range(im.shape[0]) for j in range(im.shape[1] - 1)]
        d = np.concatenate(d)
        per_image.append(np.sum(d ** 2) if kind == "l2" else np.sum(np.abs(d)))
    np.testing.assert_allclose(losses.total_variation(F, kind), np.mean(per_image), rtol=1e-5)


def test_total_variation_of_constant_is_zero():
    assert float(losses.total_variation(np.ones((1, 8, 8, 3), np.float32))) == 0.0


def test_mean_std_and_moment_loss():
    m, s = losses.mean_std(F, eps=1e-5)
    x = F.astype(np.float64)
    np.testing.assert_allclose(m, x.mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(s, np.sqrt(x.var(axis=(1, 2)) + 1e-5), rtol=1e-5)
    mt, st = T.astype(np.float64).mean(axis=(1, 2)), T.astype(np.float64).std(axis=(1, 2))
    ref = np.mean((x.mean(axis=(1, 2)) - mt) ** 2) + np.mean((np.sqrt(x.var(axis=(1, 2)) + 1e-5) - st) ** 2)
    np.testing.assert_allclose(losses.moment_loss(F, mt, st), ref, rtol=1e-4)


def test_relative_distance_matches_float64_numpy():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 5, 4, 2)).astype(np.float32)
    t = rng.normal(size=(3, 5, 4, 2)).astype(np.float32)
    x64, t64 = x.astype(np.float64), t.astype(np.float64)
    ref = np.mean([np.sum((x64[i] - t64[i]) ** 2) / np.sum(t64[i] ** 2) for i in range(3)])
    np.testing.assert_allclose(float(losses.relative_distance(x, t)), ref, rtol=1e-5)
    one = t[:1]  # one target (a style's Gram matrices) against a batch
    ref1 = np.mean([np.sum((x64[i] - t64[0]) ** 2) / np.sum(t64[0] ** 2) for i in range(3)])
    np.testing.assert_allclose(float(losses.relative_distance(x, one)), ref1, rtol=1e-5)
    assert float(losses.relative_distance(t, t)) == 0.0


def _np_periodic_peak_loss(images):
    """Float64 NumPy, written apart from nst_jax: each lattice frequency rolled to the spectrum's centre and
    its neighbourhood sliced out."""
    n, h, w, _ = images.shape
    spacing = min(h, w) // 8
    r = max(3, min(8, spacing // 2 - 3))
    r_line = max(r, min(3 * r, spacing - 4))
    hann = [0.5 - 0.5 * np.cos(2 * np.pi * np.arange(k) / k) for k in (h, w)]
    total, count = 0.0, 0
    for img in images.astype(np.float64):
        lum = img @ np.array([0.299, 0.587, 0.114])
        power = np.abs(np.fft.fft2((lum - lum.mean()) * np.outer(*hann))) ** 2
        for u in range(8):
            for v in range(8):
                if u == v == 0:
                    continue
                centred = np.roll(power, (h // 2 - u * h // 8, w // 2 - v * w // 8), axis=(0, 1))
                cy, cx = h // 2, w // 2
                peak = centred[cy - 1:cy + 2, cx - 1:cx + 2].sum()
                if u == 0 or v == 0:
                    line = centred[cy - 1:cy + 2, cx - r_line:cx + r_line + 1] if u == 0 else \
                        centred[cy - r_line:cy + r_line + 1, cx - 1:cx + 2].T
                    bg = np.concatenate([line[:, :r_line - 2], line[:, r_line + 3:]], axis=1).mean()
                else:
                    sq = centred[cy - r:cy + r + 1, cx - r:cx + r + 1].copy()
                    inner = sq[r - 2:r + 3, r - 2:r + 3].sum()
                    bg = (sq.sum() - inner) / (sq.size - 25)
                total += max(0.0, np.log(peak / (9 * bg)))
                count += 1
    return total / count


def test_periodic_peak_loss_matches_float64_numpy():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:96, :128]
    smooth = 0.5 + 0.3 * np.sin(xx / 9.0)[..., None] * np.cos(yy / 13.0)[..., None] * np.ones(3)
    board = ((yy // 2 + xx // 2) % 2 - 0.5)[..., None] * 0.03              # a 4-px checkerboard
    images = np.stack([smooth + rng.normal(0, 0.02, smooth.shape),
                       smooth + board + rng.normal(0, 0.02, smooth.shape)]).astype(np.float32)
    got = float(losses.periodic_peak_loss(jnp.asarray(images)))
    assert got == pytest.approx(_np_periodic_peak_loss(images), rel=1e-4)
    clean, hatched = (float(losses.periodic_peak_loss(jnp.asarray(images[i:i + 1]))) for i in (0, 1))
    assert clean < 0.2 < 0.5 < hatched, (clean, hatched)
    # its gradient lowers the peaks (the neighbourhood held constant)
    x = jnp.asarray(images[1:])
    step = jax.jit(jax.grad(losses.periodic_peak_loss))
    for _ in range(30):                                   # steps of at most 0.002 a value
        g = step(x)
        x = x - 0.002 * g / jnp.max(jnp.abs(g))
    assert float(losses.periodic_peak_loss(x)) < 0.5 * hatched
    assert bool(jnp.all(jnp.isfinite(step(x))))


def test_periodic_peak_loss_gradient_is_blind_to_contrast():
    """Scaling a picture's contrast about its mean scales every power alike: the value does not move
    (closed form), and neither may the gradient (a background held constant alone would make lowering
    the contrast a way to lower the term), while the gradient still lowers the hatching."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:64, :64]
    board = ((yy // 2 + xx // 2) % 2 - 0.5)[..., None] * 0.05
    image = (0.5 + 0.2 * np.sin(xx / 7.0)[..., None] + board + rng.normal(0, 0.02, (64, 64, 3)))[None]
    image = jnp.asarray(image.astype(np.float32))
    mean = jnp.mean(image)

    def scaled(s):
        return losses.periodic_peak_loss(mean + s * (image - mean))

    assert float(scaled(0.7)) == pytest.approx(float(scaled(1.0)), rel=1e-4)
    assert float(scaled(1.0)) > 0.5
    assert abs(float(jax.grad(scaled)(1.0))) < 1e-3 * float(scaled(1.0))
    g = jax.grad(losses.periodic_peak_loss)(image)
    # the descent direction is against the hatching: -g has a positive share along -board
    assert float(jnp.sum(-g * -jnp.asarray(board, jnp.float32))) > 0
