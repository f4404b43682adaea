"""Solvers on the Gatys objective: nst_jax's lbfgs, lbfgsb (jaxopt's L-BFGS-B, pixels boxed to [0, 1]) and
adam against torch.optim.LBFGS, without line search (neural-style-pt's setting) and with its strong-Wolfe
line search, on the same content/style pair, size and objective (torch_reference.GatysObjective: the same
weights and loss definitions as nst_jax.gatys_loss), same machine.

Each solver runs ``--iters`` iterations once after an untimed warm-up run (compilation for JAX, allocator
and thread start for PyTorch).  Recorded along the way: the best loss so far against function evaluations
(value + gradient) and against seconds of optimisation (the content/style targets excluded for every
solver).  PyTorch's trace has every evaluation; nst_jax's solvers report between compiled chunks of
iterations, so their curves come from a second run with one iteration per chunk (``save_every=1``: a
report after every iteration), its time axis scaled to the timed run's total (one iteration per call adds a
little dispatch time to each).

The table gives each solver's final loss (every result scored by the same PyTorch evaluator, after
clipping to [0, 1]), its evaluations and seconds, and its best loss at the evaluation count and at the
time that torch.optim.LBFGS without line search took.

    python experiments/solvers_gatys.py                # 256 px, 100 iterations
    python experiments/solvers_gatys.py --size 512 --iters 100
    python experiments/solvers_gatys.py --smoke        # 32 px, 2 iterations, nst_jax's lbfgs and torch
                                                       # without line search, a temporary folder; not lbfgsb,
                                                       # adam or strong Wolfe (each a program of its own)
"""

import argparse
import os
import time

HERE = os.path.dirname(os.path.abspath(__file__))

import harness  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch_reference as tr  # noqa: E402

from nst_jax import gatys, vgg19_params  # noqa: E402
from nst_jax import weights as W  # noqa: E402

JAX_SOLVERS = {"nst_jax lbfgs": dict(optimizer="lbfgs"), "nst_jax lbfgsb": dict(optimizer="lbfgsb"),
               "nst_jax adam (lr 0.02)": dict(optimizer="adam")}
TORCH_SOLVERS = {"torch LBFGS, no line search": None, "torch LBFGS, strong Wolfe": "strong_wolfe"}


def run_jax(params, c, s, iters, kw, chunk=gatys.CHUNK):
    """``chunk``: iterations between reports (below :data:`gatys.CHUNK`, by ``save_every``, which ends a
    compiled chunk of iterations at each of its multiples)."""
    trace = []
    if chunk < gatys.CHUNK:
        kw = dict(kw, save_every=chunk)

    def callback(it):
        trace.append((it.evaluations, it.seconds, it.loss))

    t0 = time.perf_counter()
    out, rep = gatys.stylize(c, s, size=None, iters=iters, weights=params, callback=callback, **kw)
    # Iterate.seconds counts from the call: take the targets and compile time off
    setup = time.perf_counter() - t0 - rep["optimize_seconds"]
    trace = [(e, t - setup, v) for e, t, v in trace]
    return out, trace, rep["evaluations"], rep["optimize_seconds"]


def run_torch(vgg, c, s, iters, line_search):
    ct, st = tr.nchw(c[None]), tr.nchw(s[None])
    obj = tr.GatysObjective(vgg, ct, st)
    trace, t0 = [], [None]

    def on_255(y):  # pixel values in 0..255, as neural-style-pt (see bench_gatys.torch_run)
        if t0[0] is None:
            t0[0] = time.perf_counter()
        loss = obj(y / 255.0)
        trace.append((len(trace) + 1, time.perf_counter() - t0[0], loss.item()))
        return loss

    t = time.perf_counter()
    y, evals = tr.lbfgs(on_255, ct * 255.0, iters, line_search=line_search)
    seconds = time.perf_counter() - t
    return np.clip(tr.nhwc(y / 255.0)[0], 0, 1), trace, evals, seconds


def best_at(trace, index, limit):
    """The lowest loss among the trace's points with coordinate ``index`` <= limit (nan if none)."""
    vals = [p[2] for p in trace if p[index] <= limit * (1 + 1e-9) and np.isfinite(p[2])]
    return min(vals) if vals else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--iters", type=int, default=100)
    ap.add_argument("--plot", help="loss curves (PNG); default results/gatys/solvers_gatys_<size>.png")
    harness.add_smoke(ap)
    a = ap.parse_args()
    jax_solvers, torch_solvers = JAX_SOLVERS, TORCH_SOLVERS
    if a.smoke:  # one of nst_jax's solvers (each compiles a program of its own) and PyTorch's reference
        harness.smoke_results()
        a.size, a.iters, a.plot = 32, 2, None
        jax_solvers = {k: v for k, v in JAX_SOLVERS.items() if v["optimizer"] == "lbfgs"}
        torch_solvers = {k: v for k, v in TORCH_SOLVERS.items() if v is None}
    c, s = harness.load_pair(a.size)
    params = vgg19_params()
    vgg = tr.CaffeVGG19(W.cached_h5())
    print(f"machine: {harness.machine()}; {harness.versions()}; torch threads {torch.get_num_threads()}")
    print(f"{a.size} px, {a.iters} iterations per solver", flush=True)
    runs = {}
    for name, kw in jax_solvers.items():
        run_jax(params, c, s, 2, kw)  # warm-up: compiles the programs this size needs
        runs[name] = run_jax(params, c, s, a.iters, kw)
        traced = run_jax(params, c, s, a.iters, kw, chunk=1)
        k = runs[name][3] / traced[3]
        runs[name] = (runs[name][0], [(e, t * k, v) for e, t, v in traced[1]], runs[name][2], runs[name][3])
        print(f"{name}: {runs[name][2]} evaluations, {runs[name][3]:.1f} s", flush=True)
    for name, ls in torch_solvers.items():
        run_torch(vgg, c, s, 2, ls)
        runs[name] = run_torch(vgg, c, s, a.iters, ls)
        print(f"{name}: {runs[name][2]} evaluations, {runs[name][3]:.1f} s", flush=True)

    ref = runs["torch LBFGS, no line search"]
    ref_evals, ref_seconds = ref[2], ref[3]
    table = {}
    print()
    print(harness.row(["solver", "evaluations", "seconds", "final loss (torch evaluator)",
                       f"best loss at {ref_evals} evaluations", f"best loss at {ref_seconds:.1f} s"]))
    print(harness.row(["---"] * 6))
    for name, (out, trace, evals, seconds) in runs.items():
        obj = tr.GatysObjective(vgg, tr.nchw(c[None]), tr.nchw(s[None]))
        with torch.no_grad():
            final = float(obj(tr.nchw(np.asarray(out)[None])))
        row = {"evaluations": evals, "seconds": seconds, "final_loss": final,
               "loss_at_ref_evals": best_at(trace, 0, ref_evals),
               "loss_at_ref_seconds": best_at(trace, 1, ref_seconds), "trace": trace}
        table[name] = row
        print(harness.row([name, evals, f"{seconds:.1f}", f"{final:.4g}", f"{row['loss_at_ref_evals']:.4g}",
                           f"{row['loss_at_ref_seconds']:.4g}"]), flush=True)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    for name, row in table.items():
        tr_ = np.array(row["trace"])
        best = np.minimum.accumulate(tr_[:, 2])
        a1.plot(tr_[:, 0], best, label=name)
        a2.plot(tr_[:, 1], best, label=name)
    for ax, label in ((a1, "function evaluations"), (a2, "seconds (optimisation)")):
        ax.set_yscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("best loss so far")
    a1.legend(fontsize=8)
    fig.suptitle(f"Gatys objective, {a.size} px, {a.iters} iterations; {harness.machine()}", fontsize=9)
    fig.tight_layout()
    plot = a.plot or harness.result_path("gatys", f"solvers_gatys_{a.size}.png")
    fig.savefig(plot, dpi=100)
    harness.save(harness.result_path("gatys", f"solvers_gatys_{a.size}.json"),
                 {"machine": harness.machine(), "versions": harness.versions(), "size": a.size,
                  "iters": a.iters, "solvers": table})
    print(f"wrote {plot}")


if __name__ == "__main__":
    main()
