"""VGG-19 up to relu5_1: forward, and forward + gradient w.r.t. the input image (what Gatys needs).

JAX (nst_jax.vgg19_features, jit) vs the independent PyTorch VGG-19 of torch_reference, same real
weights, same input, same machine, alternated runs.

    python experiments/bench_vgg.py            # 256 and 512 px, 7 rounds
    python experiments/bench_vgg.py --quick    # 256 px, 5 rounds
    python experiments/bench_vgg.py --smoke    # 32 px only (not 256 and 512), both passes, 1 round, results
                                               # in a temporary folder
"""

import argparse

import harness  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch_reference as tr  # noqa: E402

from nst_jax import vgg19_features, vgg19_params  # noqa: E402
from nst_jax import weights as W  # noqa: E402
from nst_jax.vgg import with_winograd  # noqa: E402

LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sizes", type=int, nargs="+")
    ap.add_argument("--repeats", type=int)
    harness.add_smoke(ap)
    a = ap.parse_args()
    if a.smoke:
        harness.smoke_results()
        a.sizes, a.repeats = [32], 1
    sizes = a.sizes or ([256] if a.quick else [256, 512])
    repeats = a.repeats or (5 if a.quick else 7)
    params = with_winograd(vgg19_params())
    ref = tr.CaffeVGG19(W.cached_h5())
    print(f"machine: {harness.machine()}; {harness.versions()}; torch threads {torch.get_num_threads()}")
    print(harness.row(["size", "pass", "JAX", "PyTorch", "PyTorch / JAX"]))
    print(harness.row(["---"] * 5))
    results = {}
    for size in sizes:
        x = np.random.default_rng(0).uniform(size=(1, size, size, 3)).astype(np.float32)
        xj, xt = jnp.asarray(x), tr.nchw(x)

        fwd = jax.jit(lambda p, im: vgg19_features(p, im, LAYERS))

        def loss(p, im):
            return sum(jnp.mean(v ** 2) for v in vgg19_features(p, im, LAYERS).values())

        grad = jax.jit(jax.grad(loss, argnums=1))

        def t_fwd():
            with torch.no_grad():
                return ref(xt, LAYERS)

        def t_grad():
            xg = xt.clone().requires_grad_(True)
            out = ref(xg, LAYERS)
            (g,) = torch.autograd.grad(sum((v ** 2).mean() for v in out.values()), xg)
            return g

        for name, fj, ft in [("forward", lambda: fwd(params, xj), t_fwd),
                             ("forward + input gradient", lambda: grad(params, xj), t_grad)]:
            r = harness.compare({"jax": fj, "torch": ft}, repeats, sync=jax.block_until_ready)
            ratio = r["torch"]["median"] / r["jax"]["median"]
            results[f"{size}/{name}"] = r
            print(harness.row([f"{size}²", name, harness.fmt(r["jax"]), harness.fmt(r["torch"]),
                               f"**{ratio:.2f}×**"]), flush=True)
    harness.save(harness.result_path("vgg", "bench_vgg.json"), results)


if __name__ == "__main__":
    main()
