"""The Gram matrix costs O(C^2 * HW): measured scaling, JAX and PyTorch in the same run.

Times nst_jax.losses.gram_matrix (jit) and the PyTorch reference's gram (bmm) on random features for
C in {64, 128, 256, 512} channels (VGG-19's widths) and HW from 32^2 to 256^2 positions, with the
harness (alternated, warm-up excluded, median of --repeats).  Fits log t = a + p log C + q log HW by
least squares over the cases with C^2 HW >= --fit-min (below it, fixed per-call costs dominate) and
plots time against C^2 HW.  The claim holds if p is close to 2 and q close to 1.

    python experiments/gram_cost.py
    python experiments/gram_cost.py --smoke   # C in {8, 16}, HW in {8², 16²} (not VGG's widths), 1 round, the
                                              # fit and plot, a temporary folder
"""

import argparse
import json
import os

import harness  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch_reference as tr  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from nst_jax.losses import gram_matrix  # noqa: E402


def fit(rows, key, fit_min):
    pts = [r for r in rows if r["C"] ** 2 * r["HW"] >= fit_min]
    a = np.array([[1.0, np.log(r["C"]), np.log(r["HW"])] for r in pts])
    y = np.log([r[key] for r in pts])
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    return {"C_exponent": float(coef[1]), "HW_exponent": float(coef[2]), "cases": len(pts)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--channels", type=int, nargs="+", default=[64, 128, 256, 512])
    ap.add_argument("--sides", type=int, nargs="+", default=[32, 64, 128, 256])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--fit-min", type=float, default=2 ** 26)
    harness.add_smoke(ap)
    a = ap.parse_args()
    if a.smoke:
        harness.smoke_results()
        a.channels, a.sides, a.repeats, a.fit_min = [8, 16], [8, 16], 1, 0.0
    print(f"machine: {harness.machine()}; {harness.versions()}; torch threads {torch.get_num_threads()}")
    g = jax.jit(gram_matrix)
    rows = []
    print(harness.row(["C", "H×W", "C²·HW", "JAX", "PyTorch", "PyTorch / JAX"]))
    print(harness.row(["---"] * 6))
    rng = np.random.default_rng(0)
    for c in a.channels:
        for side in a.sides:
            f = rng.standard_normal((1, side, side, c)).astype(np.float32)
            fj, ft = jnp.asarray(f), tr.nchw(f)

            def t_gram(ft=ft):
                with torch.no_grad():
                    return tr.gram(ft)

            r = harness.compare({"jax": lambda fj=fj: g(fj), "torch": t_gram}, a.repeats,
                                sync=jax.block_until_ready)
            rows.append({"C": c, "HW": side * side, "jax": r["jax"]["median"], "torch": r["torch"]["median"],
                         "jax_spread": [r["jax"]["min"], r["jax"]["max"]],
                         "torch_spread": [r["torch"]["min"], r["torch"]["max"]]})
            print(harness.row([c, f"{side}²", f"{c * c * side * side:.2e}", harness.fmt(r["jax"]),
                               harness.fmt(r["torch"]), f"{r['torch']['median'] / r['jax']['median']:.2f}×"]),
                  flush=True)
    fits = {k: fit(rows, k, a.fit_min) for k in ("jax", "torch")}
    for k, v in fits.items():
        print(f"{k}: t ∝ C^{v['C_exponent']:.2f} · HW^{v['HW_exponent']:.2f} "
              f"(fitted on {v['cases']} cases with C²·HW ≥ {a.fit_min:.1e})")
    fig, ax = plt.subplots(figsize=(6, 4.5))
    work = np.array([r["C"] ** 2 * r["HW"] for r in rows], float)
    for k, m in (("jax", "o"), ("torch", "s")):
        ax.loglog(work, [r[k] * 1e3 for r in rows], m, alpha=0.7,
                  label=f"{'JAX' if k == 'jax' else 'PyTorch'}: C^{fits[k]['C_exponent']:.2f} "
                        f"HW^{fits[k]['HW_exponent']:.2f}")
    ref = np.array([work.min(), work.max()])
    anchor = max(rows, key=lambda r: r["C"] ** 2 * r["HW"])
    ax.loglog(ref, anchor["jax"] * 1e3 * ref / ref[1], "k--", lw=0.8, label="slope 1 (t ∝ C²·HW)")
    ax.axvline(a.fit_min, color="grey", lw=0.5)
    ax.set_xlabel("C² · HW")
    ax.set_ylabel("Gram matrix time, ms")
    ax.set_title(harness.machine(), fontsize=8)
    ax.legend(fontsize=8)
    out = os.path.join(harness.RESULTS, "claims")
    os.makedirs(out, exist_ok=True)
    fig.savefig(os.path.join(out, "gram_cost.png"), dpi=110, bbox_inches="tight")
    with open(os.path.join(out, "gram_cost.json"), "w") as f:
        json.dump({"machine": harness.machine(), "versions": harness.versions(), "fits": fits, "rows": rows},
                  f, indent=2)
    print(f"wrote {out}/gram_cost.png/.json")


if __name__ == "__main__":
    main()
