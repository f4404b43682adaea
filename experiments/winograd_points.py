"""How accurate is Winograd F(4x4, 3x3) in float32 for each choice of interpolation points?

F(m, r) (Lavin & Gray 2016) is built from m + r - 2 finite points and infinity (Toom-Cook): G evaluates the
kernel's polynomial at the points, B^T is the transposed inverse of the evaluation matrix of the product's
polynomial, A^T evaluates the output's; built here in exact rational arithmetic, B^T's rows scaled to integers
and their scales moved to G.  Each set's convolution is then computed in float32 (the input transform, the 36
products and the output transform, with the kernel transformed in float64 and rounded once) on VGG-19-shaped
layers with ReLU-like inputs and He-scaled kernels, and compared with a float64 convolution (relative
Frobenius error).  The set ``nst_jax.vgg`` uses is checked against its own matrices, and the package's
convolution (``conv3x3(conv="winograd")``) is measured on the same layers beside them.

    python experiments/winograd_points.py
    python experiments/winograd_points.py --smoke   # 16 x 16, 8 channels, a temporary folder
"""

import argparse
from fractions import Fraction as Fr

import harness  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from nst_jax import vgg  # noqa: E402

POINT_SETS = {"0, ±1, ±2": (0, 1, -1, 2, -2),
              "0, ±1, ±1/2": (0, 1, -1, Fr(1, 2), Fr(-1, 2)),
              "0, ±1, 2, 1/2": (0, 1, -1, 2, Fr(1, 2)),
              "0, ±1, −2, −1/2": (0, 1, -1, -2, Fr(-1, 2)),
              "0, ±2, ±1/2 (nst_jax)": (0, 2, Fr(1, 2), -2, Fr(-1, 2))}


def _inverse(m):
    """The inverse of a square matrix of Fractions (Gauss-Jordan, exact)."""
    n = len(m)
    a = [list(row) + [Fr(int(i == j)) for j in range(n)] for i, row in enumerate(m)]
    for col in range(n):
        piv = next(r for r in range(col, n) if a[r][col] != 0)
        a[col], a[piv] = a[piv], a[col]
        p = a[col][col]
        a[col] = [v / p for v in a[col]]
        for r in range(n):
            if r != col and a[r][col] != 0:
                f = a[r][col]
                a[r] = [v - f * w for v, w in zip(a[r], a[col], strict=True)]
    return [row[n:] for row in a]


def toom_cook(points, m=4, r=3):
    """(A^T, B^T, G) of F(m, r) for ``points`` (m + r - 2 finite points; infinity is added), exact."""
    n = m + r - 1

    def ev(p, deg):  # the row evaluating a polynomial of ``deg`` coefficients (low to high) at p
        return [Fr(0)] * (deg - 1) + [Fr(1)] if p is None else [Fr(p) ** k for k in range(deg)]

    pts = list(points) + [None]
    at = [list(col) for col in zip(*[ev(p, m) for p in pts], strict=True)]
    g = [ev(p, r) for p in pts]
    bt = [list(col) for col in zip(*_inverse([ev(p, n) for p in pts]), strict=True)]
    for i, row in enumerate(bt):  # B^T's row to integers, its scale to G's row
        scale = np.lcm.reduce([v.denominator for v in row])
        bt[i] = [v * scale for v in row]
        g[i] = [v / scale for v in g[i]]
    return at, bt, g


def conv_with(x, k, at, bt, g):
    """The 3x3 "SAME" convolution of ``x`` (N, H, W, C; H, W multiples of 4) by ``k`` through (A^T, B^T, G):
    float32 throughout but for the kernel's transform (float64, rounded once)."""
    at, bt, g = (np.array(mat, dtype=np.float64) for mat in (at, bt, g))
    u = np.einsum("ia,abco,jb->ijco", g, k.astype(np.float64), g).astype(np.float32)
    n, h, w, _ = x.shape
    th, tw = h // 4, w // 4
    xp = jnp.pad(jnp.asarray(x), ((0, 0), (1, 1), (1, 1), (0, 0)))
    rows = np.arange(th)[:, None] * 4 + np.arange(6)
    cols = np.arange(tw)[:, None] * 4 + np.arange(6)
    d = xp[:, rows][:, :, :, cols]  # (N, th, 6, tw, 6, C)
    bt32 = bt.astype(np.float32)
    v = jnp.einsum("ia,ntaqbc,jb->ijntqc", bt32, d, bt32)
    prods = jnp.einsum("ijntqc,ijco->ijntqo", v, u)
    at32 = at.astype(np.float32)
    y = jnp.einsum("ai,ijntqo,bj->ntaqbo", at32, prods, at32)
    return np.asarray(y.reshape(n, 4 * th, 4 * tw, -1), np.float64)


def reference(x, k):
    x, k = x.astype(np.float64), k.astype(np.float64)
    _, h, w, _ = x.shape
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    return sum(xp[:, a: a + h, b: b + w] @ k[a, b] for a in range(3) for b in range(3))


def rel_error(y, ref) -> float:
    return float(np.linalg.norm(y - ref) / np.linalg.norm(ref))


def check_package_matrices():
    """nst_jax.vgg's G, B^T and A^T are this construction's for its points, up to a scale a row of B^T (and
    the inverse scale on G's row)."""
    at, bt, g = toom_cook(POINT_SETS["0, ±2, ±1/2 (nst_jax)"])
    at, bt, g = (np.array(mat, dtype=np.float64) for mat in (at, bt, g))
    pkg_at, pkg_bt, pkg_g = vgg.winograd_matrices()
    col = np.abs(bt).argmax(1)
    scale = bt[np.arange(len(bt)), col] / pkg_bt[np.arange(len(bt)), col]
    assert np.allclose(pkg_at, at), "A^T"
    assert np.allclose(pkg_bt * scale[:, None], bt), "B^T"
    assert np.allclose(pkg_g / scale[:, None], g), "G"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    harness.add_smoke(ap)
    a = ap.parse_args()
    layers = [(64, 256, 256), (32, 512, 512)]
    if a.smoke:
        harness.smoke_results()
        layers = [(16, 8, 8)]
    check_package_matrices()
    print(f"machine: {harness.machine()}; {harness.versions()}")
    names = [*POINT_SETS, "nst_jax conv3x3(conv='winograd')"]
    print(harness.row(["layer", *names]))
    print(harness.row(["---"] * (1 + len(names))))
    rng = np.random.default_rng(a.seed)
    results = {}
    for side, cin, cout in layers:
        # a ReLU's output with a varying scale across the picture, and a He-scaled kernel
        x = (np.maximum(rng.standard_normal((1, side, side, cin)), 0)
             * rng.uniform(0, 3, (1, side, side, 1))).astype(np.float32)
        k = (rng.standard_normal((3, 3, cin, cout)) * np.sqrt(2 / (9 * cin))).astype(np.float32)
        ref = reference(x, k)
        errs = {name: rel_error(conv_with(x, k, *toom_cook(p)), ref) for name, p in POINT_SETS.items()}
        ours = vgg.conv3x3(jnp.asarray(x), k, conv="winograd")
        errs[names[-1]] = rel_error(np.asarray(ours, np.float64), ref)
        key = f"{side}x{side} {cin}->{cout}"
        results[key] = errs
        print(harness.row([key, *[f"{errs[n]:.2e}" for n in names]]), flush=True)
    harness.save(harness.result_path("vgg", "winograd_points.json"), results)


if __name__ == "__main__":
    main()
