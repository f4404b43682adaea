"""Which Gram-matrix formulation is fastest on XLA:CPU, forward and forward + gradient?

Compares, under jax.jit on random (N, H, W, C) features: the batched ``einsum("npc,npd->ncd")``,
a batched ``matmul`` with a swapped axis, one plain 2-D ``f.T @ f`` per image (a Python loop; what
``nst_jax.losses.gram_matrix`` does for N = 1), and an explicit transpose copy followed by an NT
einsum; and PyTorch's ``bmm`` (the reference's gram).  "forward / forward+grad" in ms, medians of 20.

    python experiments/gram_variants.py
    python experiments/gram_variants.py --smoke   # every variant on two tiny cases (not the nine real ones),
                                                  # 2 timings each
"""

import argparse
import os
import time

import harness  # noqa: E402
import jax
import jax.numpy as jnp
import numpy as np
import torch


def g_einsum(f):
    n, h, w, c = f.shape
    f = f.reshape(n, h * w, c)
    return jnp.einsum("npc,npd->ncd", f, f) / (c * h * w)


def g_swapaxes(f):
    n, h, w, c = f.shape
    f = f.reshape(n, h * w, c)
    return jnp.matmul(jnp.swapaxes(f, 1, 2), f) / (c * h * w)


def g_per_image(f):
    n, h, w, c = f.shape
    f = f.reshape(n, h * w, c)
    return jnp.stack([f[i].T @ f[i] for i in range(n)]) / (c * h * w)


def g_transpose_copy(f):
    n, h, w, c = f.shape
    ft = jnp.transpose(f.reshape(n, h * w, c), (0, 2, 1))
    return jnp.einsum("ncp,ndp->ncd", ft, ft) / (c * h * w)


REPEATS = 20


def median_ms(fn, repeats=None):
    repeats = repeats or REPEATS
    fn()
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return 1e3 * float(np.median(ts))


def main():
    global REPEATS
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    harness.add_smoke(ap)
    a = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    print(f"machine: {harness.machine()}; {harness.versions()}")
    variants = [("einsum", g_einsum), ("swapaxes", g_swapaxes), ("per-image 2-D", g_per_image),
                ("transpose copy", g_transpose_copy)]
    print(harness.row(["N × H² × C"] + [v for v, _ in variants] + ["PyTorch bmm"]))
    print(harness.row(["---"] * (len(variants) + 2)))
    cases = [(1, 256, 64), (1, 128, 128), (1, 64, 256), (1, 32, 512), (1, 512, 64),
             (4, 128, 64), (4, 64, 128), (4, 32, 256), (8, 128, 64)]
    if a.smoke:
        cases, REPEATS = [(1, 8, 8), (2, 8, 16)], 2
    for n, hw, c in cases:
        x = np.random.default_rng(0).random((n, hw, hw, c), dtype=np.float32)
        cells = []
        for _, g in variants:
            fwd = jax.jit(g)
            grad = jax.jit(jax.grad(lambda f, g=g: jnp.sum(g(f) ** 2)))
            cells.append(f"{median_ms(lambda: jax.block_until_ready(fwd(x))):.2f} / "
                         f"{median_ms(lambda: jax.block_until_ready(grad(x))):.2f}")
        xt = torch.tensor(x).permute(0, 3, 1, 2).contiguous()
        xg = xt.clone().requires_grad_(True)

        def tgram(f):
            b, ch, h, w = f.shape
            f = f.reshape(b, ch, h * w)
            return torch.bmm(f, f.transpose(1, 2)) / (ch * h * w)

        def tgrad():
            xg.grad = None
            (tgram(xg) ** 2).sum().backward()

        with torch.no_grad():
            tf = median_ms(lambda: tgram(xt))
        cells.append(f"{tf:.2f} / {median_ms(tgrad):.2f}")
        print(harness.row([f"{n} × {hw}² × {c}"] + cells), flush=True)


if __name__ == "__main__":
    main()
