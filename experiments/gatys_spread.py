"""How much does the loss after N L-BFGS iterations depend on tiny perturbations of the start?

L-BFGS without a line search is a chaotic map over tens of iterations: two implementations that
agree to float32 rounding follow different trajectories.  This measures that spread for nst_jax and
for the PyTorch reference (torch.optim.LBFGS, no line search), by starting each from the content image
plus uniform noise of amplitude ``--eps`` (in [0, 1] pixel units), several seeds, and evaluating every
result with the same PyTorch evaluator as bench_gatys.py.  It tells whether a difference in final
loss between the two implementations at equal iterations is larger than either's own spread.

``--reject F [F ...]`` runs nst_jax once per value of its safeguard's threshold
(``nst_jax.solvers.lbfgs(reject=F)``, default ``gatys.REJECT_FACTOR``: a trial point whose loss exceeds F x
the current one is refused and the same direction retried with a shorter step; ``inf`` takes every finite
one, as torch.optim.LBFGS does).

    python experiments/gatys_spread.py --size 256 --iters 50 --seeds 0 1 2 3 --reject 10 1
    python experiments/gatys_spread.py --size 512 --iters 20 --seeds 0 1 2 --reject 10 1
    python experiments/gatys_spread.py --size 256 --iters 100 --seeds 0 1 2 --history 10 20 100
    python experiments/gatys_spread.py --size 256 --iters 50 --seeds 0 1 2 3 4 5 --dtype float32 bfloat16
    python experiments/gatys_spread.py --smoke   # 32 px, 2 iterations, seeds 0 1, history 2 (what stylize
                                                 # keeps for 2 iterations), a temporary folder
"""

import argparse
import os
import statistics

HERE = os.path.dirname(os.path.abspath(__file__))

import harness  # noqa: E402
import numpy as np  # noqa: E402
import torch_reference as tr  # noqa: E402
from bench_gatys import evaluate  # noqa: E402

from nst_jax import gatys, solvers, vgg19_params  # noqa: E402
from nst_jax import weights as W  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    ap.add_argument("--eps", type=float, default=1e-4)
    ap.add_argument("--reject", type=float, nargs="+", default=[gatys.REJECT_FACTOR])
    ap.add_argument("--history", type=int, nargs="+", default=[gatys.HISTORY],
                    help="L-BFGS pairs kept by nst_jax (PyTorch keeps 100)")
    ap.add_argument("--tag", default="", help="suffix for the result file (e.g. the CPU)")
    ap.add_argument("--dtype", nargs="+", choices=gatys.DTYPES, default=["float32"],
                    help="nst_jax's VGG-19 computation, one run per value (bfloat16: mixed precision)")
    harness.add_smoke(ap)
    a = ap.parse_args()
    if a.smoke:
        harness.smoke_results()
        a.size, a.iters, a.seeds, a.history = 32, 2, [0, 1], [2]
    params = vgg19_params()
    vgg = tr.CaffeVGG19(W.cached_h5())
    c, s = harness.load_pair(a.size)
    ct, st = tr.nchw(c[None]), tr.nchw(s[None])
    obj = tr.GatysObjective(vgg, ct, st)
    names = {f"jax_reject_{f:g}" + (f"_history_{h}" if a.history != [gatys.HISTORY] else "")
             + (f"_{d}" if a.dtype != ["float32"] else ""): (f, h, d)
             for f in a.reject for h in a.history for d in a.dtype}
    out = {**{n: [] for n in names}, "torch": []}
    for seed in a.seeds:
        noise = np.random.default_rng(seed).uniform(-a.eps, a.eps, c.shape).astype(np.float32)
        x0 = c + noise if seed else c  # seed 0: the unperturbed start
        for name, (f, h, d) in names.items():
            xj, _ = gatys.stylize(c, s, size=None, iters=a.iters, init=x0, weights=params, dtype=d,
                                  optimizer=solvers.lbfgs(history=h, reject=f))
            out[name].append(evaluate(vgg, c, s, xj)["total"])
        y, _ = tr.lbfgs(lambda y: obj(y / 255.0), tr.nchw(x0[None]) * 255.0, a.iters)
        out["torch"].append(evaluate(vgg, c, s, tr.nhwc((y / 255.0).clamp(0, 1))[0])["total"])
        print(f"seed {seed}: " + ", ".join(f"{n} {v[-1]:.4g}" for n, v in out.items()), flush=True)
    summary = {}
    for name, v in out.items():
        m = statistics.median(v)
        summary[name] = {"losses": v, "median": m, "spread": (max(v) - min(v)) / m}
        print(f"{name}: median {m:.4g}, min {min(v):.4g}, max {max(v):.4g} "
              f"(spread {100 * summary[name]['spread']:.1f}% of the median)")
    gap = {n: summary[n]["median"] / summary["torch"]["median"] - 1 for n in names}
    for n, g in gap.items():
        print(f"{n} median / PyTorch median - 1 = {100 * g:+.1f}%")
    tag = f"{a.size}_{a.iters}" + ("_history" if a.history != [gatys.HISTORY] else "") \
        + ("_" + "-".join(a.dtype) if a.dtype != ["float32"] else "") + a.tag
    harness.save(harness.result_path("gatys", f"gatys_spread_{tag}.json"),
                 {"size": a.size, "iters": a.iters, "eps": a.eps, **summary, "gap": gap})


if __name__ == "__main__":
    main()
