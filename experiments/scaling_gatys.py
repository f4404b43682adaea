"""Gatys et al.: time per function evaluation and peak memory against pixel count.

* Time: one evaluation of the objective and its gradient with respect to the image (what every L-BFGS
  iteration costs), JAX (the jit-compiled nst_jax objective) vs the independent PyTorch objective of
  torch_reference, same weights, same random image, alternated with the harness.  A power law
  t = a * pixels^p is fitted to each.
* Memory (``--memory``): the peak resident memory of a fresh process running nst_jax.stylize
  (L-BFGS, history 100, 2 iterations) at each size (memory_gatys.py's measurement), with a straight
  line fitted: peak = a + b * pixels.

    python experiments/scaling_gatys.py --sizes 128 192 256 384 512 --memory
    python experiments/scaling_gatys.py --memory-json experiments/results/gatys/memory_gatys_history100.json
    python experiments/scaling_gatys.py --smoke   # 32 px only (one size: the fit is degenerate), 1 round, a
                                                  # made-up memory JSON, a temporary folder; not --memory
"""

import argparse
import json
import os
import subprocess
import sys

import harness  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib  # noqa: E402
import memory_gatys  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch_reference as tr  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from nst_jax import gatys, vgg19_params  # noqa: E402
from nst_jax import weights as W  # noqa: E402


def power_fit(px, t):
    p, loga = np.polyfit(np.log(px), np.log(t), 1)
    return float(p), float(np.exp(loga))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 192, 256, 384, 512])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--memory", action="store_true", help="also peak memory (one process per size)")
    ap.add_argument("--memory-sizes", type=int, nargs="+", default=[256, 512, 768, 1024])
    ap.add_argument("--memory-json", help="plot the no-remat rows of a memory_gatys.py result instead")
    harness.add_smoke(ap)
    a = ap.parse_args()
    if a.smoke:
        tmp = harness.smoke_results()
        a.sizes, a.repeats, a.memory = [32], 1, False  # one size: each is a compiled program of its own
        a.memory_json = os.path.join(tmp, "memory_smoke.json")  # the plot's memory panel, from made-up rows
        with open(a.memory_json, "w") as f:
            json.dump([{"size": n, "remat": False, "peak_gb": 1.0 + n * n * 3e-6} for n in (24, 32)], f)
    print(f"machine: {harness.machine()}; {harness.versions()}; torch threads {torch.get_num_threads()}")
    params = gatys.with_winograd(vgg19_params())
    vgg = tr.CaffeVGG19(W.cached_h5())
    cfg = gatys.Config()
    wts = {"content": jnp.float32(5), "style": jnp.float32(100), "tv": jnp.float32(5e-4),
           "style_layers": jnp.ones(5, jnp.float32)}
    vg = jax.jit(jax.value_and_grad(lambda x, t: gatys.gatys_loss(params, x, t, wts, cfg)[0]))
    rows = []
    print(harness.row(["size", "pixels", "JAX per evaluation", "PyTorch per evaluation", "PyTorch / JAX"]))
    print(harness.row(["---"] * 5))
    rng = np.random.default_rng(0)
    for size in a.sizes:
        c, s, x = (rng.uniform(size=(1, size, size, 3)).astype(np.float32) for _ in range(3))
        targets = jax.jit(gatys.compute_targets, static_argnums=(4,))(
            params, jnp.asarray(c), [jnp.asarray(s)], [1.0], cfg)
        xj = jnp.asarray(x)
        obj = tr.GatysObjective(vgg, tr.nchw(c), tr.nchw(s))
        xt = tr.nchw(x)

        def t_eval():
            y = xt.clone().requires_grad_(True)
            loss = obj(y)
            loss.backward()
            return y.grad

        r = harness.compare({"jax": lambda: vg(xj, targets), "torch": t_eval}, a.repeats,
                            sync=jax.block_until_ready)
        rows.append({"size": size, "pixels": size * size, **{k: r[k]["median"] for k in ("jax", "torch")},
                     "timing": r})
        print(harness.row([f"{size}²", size * size, harness.fmt(r["jax"]), harness.fmt(r["torch"]),
                           f"**{r['torch']['median'] / r['jax']['median']:.2f}×**"]), flush=True)
    px = np.array([r["pixels"] for r in rows], float)
    fits = {k: power_fit(px, [r[k] for r in rows]) for k in ("jax", "torch")}
    for k, (p, _) in fits.items():
        print(f"{k}: time per evaluation ∝ pixels^{p:.2f}")

    mem = []
    if a.memory_json:
        with open(a.memory_json) as f:
            mem = [{"size": m["size"], "pixels": m["size"] ** 2, "peak_gb": m["peak_gb"]}
                   for m in json.load(f) if not m["remat"]]
    elif a.memory:
        print("\n| size | peak memory |\n| --- | --- |")
        for size in a.memory_sizes:
            out = subprocess.run([sys.executable, "-c", memory_gatys.CHILD, str(size), "0", "100"],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                print(f"| {size}² | failed: {out.stderr.strip().splitlines()[-1]} |")
                continue
            m = json.loads(out.stdout.strip().splitlines()[-1])
            mem.append({"size": size, "pixels": size * size, "peak_gb": m["peak_gb"]})
            print(f"| {size}² | {m['peak_gb']:.2f} GB |", flush=True)
    mem_fit = None
    if len(mem) >= 2:
        b, a0 = np.polyfit([m["pixels"] for m in mem], [m["peak_gb"] for m in mem], 1)
        mem_fit = {"intercept_gb": float(a0), "kb_per_pixel": float(b * 2 ** 30 / 1e3)}
        print(f"peak ≈ {a0:.2f} GB + {mem_fit['kb_per_pixel']:.2f} kB × pixels")

    fig, axes = plt.subplots(1, 2 if mem else 1, figsize=(11 if mem else 5.5, 4.3), squeeze=False)
    ax = axes[0][0]
    for k, m in (("jax", "o-"), ("torch", "s-")):
        ax.loglog(px, [r[k] for r in rows], m,
                  label=f"{'JAX' if k == 'jax' else 'PyTorch'}: ∝ pixels^{fits[k][0]:.2f}")
    ax.set_xlabel("pixels")
    ax.set_ylabel("seconds per evaluation (value + gradient)")
    ax.set_title(harness.machine(), fontsize=8)
    ax.legend(fontsize=8)
    if mem:
        ax = axes[0][1]
        mp = np.array([m["pixels"] for m in mem], float)
        ax.plot(mp / 1e6, [m["peak_gb"] for m in mem], "o", label="nst_jax, L-BFGS history 100")
        ax.plot(mp / 1e6, mem_fit["intercept_gb"] + mem_fit["kb_per_pixel"] * 1e3 / 2 ** 30 * mp, "k--",
                lw=0.8, label=f"{mem_fit['intercept_gb']:.2f} GB + {mem_fit['kb_per_pixel']:.1f} kB/pixel")
        ax.set_xlabel("megapixels")
        ax.set_ylabel("peak resident memory, GB")
        ax.legend(fontsize=8)
    out = os.path.join(harness.RESULTS, "claims")
    os.makedirs(out, exist_ok=True)
    fig.savefig(os.path.join(out, "scaling_gatys.png"), dpi=110, bbox_inches="tight")
    with open(os.path.join(out, "scaling_gatys.json"), "w") as f:
        json.dump({"machine": harness.machine(), "versions": harness.versions(),
                   "time_exponent": {k: v[0] for k, v in fits.items()}, "rows": rows, "memory": mem,
                   "memory_fit": mem_fit}, f, indent=2, default=float)
    print(f"wrote {out}/scaling_gatys.png/.json")


if __name__ == "__main__":
    main()
