"""Why did Gatys on an H200 end at a worse loss than PyTorch?  TensorFloat-32 emulated on the CPU.

On the H200 (BENCHMARKS.md, "Gatys on the GPU") nst_jax's 300 L-BFGS iterations ended at 5.0e6 against
PyTorch's 3.4e6, on the CPU the two agree.  JAX lets XLA compute float32 products in TF32 (inputs rounded
to 10 mantissa bits, float32 accumulation) on recent NVIDIA GPUs unless a product asks for HIGHEST.
PyTorch allows TF32 in its cuDNN convolutions but not in its matrix products (``torch.dot``/``torch.mm``:
``torch.backends.cuda.matmul.allow_tf32`` is False by default), so the candidates on our side are:

* ``convs``:  every VGG convolution (forward and input gradient), as both libraries do;
* ``vdots``:  the L-BFGS inner products (two-loop recursion, curvature pair, slope), which PyTorch
  computes in float32;
* ``both``.

This script rounds the operands of exactly those products to TF32 (round to nearest even on the low 13
mantissa bits) on the CPU, where XLA otherwise computes float32 exactly, runs the same Gatys problem as
``bench_gatys.py`` and scores every result with the same float32 evaluator.  Gram matrices are not
rounded (they ask for HIGHEST since session 3).

    python experiments/tf32_emulation.py --size 384 --iters 300
"""

import argparse
import json
import os
import time

HERE = os.path.dirname(os.path.abspath(__file__))

import harness  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import torch_reference as tr  # noqa: E402
from bench_gatys import evaluate  # noqa: E402

from nst_jax import gatys, lbfgs, vgg, vgg19_params  # noqa: E402
from nst_jax import weights as W  # noqa: E402


def tf32(x):
    """Round float32 to TensorFloat-32 (10 explicit mantissa bits), round to nearest even."""
    b = jax.lax.bitcast_convert_type(x, jnp.uint32)
    b = (b + jnp.uint32(0xFFF) + ((b >> 13) & 1)) & jnp.uint32(0xFFFFE000)
    return jax.lax.bitcast_convert_type(b, jnp.float32)


_exact_conv, _exact_vdot = vgg._lax_conv, lbfgs._vdot


def configure(mode):
    vgg._lax_conv = ((lambda x, k: _exact_conv(tf32(x), tf32(k))) if mode in ("convs", "both")
                     else _exact_conv)
    lbfgs._vdot = ((lambda a, b: _exact_vdot(tf32(a), tf32(b))) if mode in ("vdots", "both")
                   else _exact_vdot)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=384)
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--modes", nargs="+", default=["float32", "convs", "vdots", "both"])
    a = ap.parse_args()
    # every convolution through lax.conv (the GPU's path), so that 'convs' rounds all of them
    vgg.WINOGRAD_MIN_COUT = 10 ** 9
    params = vgg19_params()
    c, s = harness.load_pair(a.size)
    torch_vgg = tr.CaffeVGG19(os.environ.get("NST_JAX_WEIGHTS") or W.cached_h5())
    results = {}
    for mode in a.modes:
        configure(mode)
        jax.clear_caches()
        gatys.PROGRAMS._cache.clear()
        t = time.perf_counter()
        out, rep = gatys.stylize(c, s, size=None, iters=a.iters, weights=params)
        dt = time.perf_counter() - t
        terms = evaluate(torch_vgg, c, s, out)  # PyTorch, float32, the bench's evaluator
        results[mode] = {"seconds": dt, "evaluations": rep["evaluations"], "terms": terms}
        print(f"{mode:8s} loss {terms['total']:.4g} (content {terms['content']:.4g}, style "
              f"{terms['style']:.4g})  evaluations {rep['evaluations']}  {dt:.0f} s", flush=True)
    configure("float32")
    h, w = c.shape[:2]
    harness.save(os.path.join(HERE, "results", f"tf32_emulation_{h}x{w}_{a.iters}.json"),
                 {"machine": harness.machine(), "size": [h, w], "iters": a.iters, "results": results})
    print(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
