"""Gatys et al. end to end: nst_jax.stylize (nst_jax.lbfgs, compiled) vs an independent PyTorch
implementation (torch_reference: same weights, same objective, torch.optim.LBFGS without line search,
as neural-style-pt), same content/style images, same size, same iteration count, same machine.

Two PyTorch references: torch.optim.LBFGS without line search (neural-style-pt's setting, one
evaluation per iteration) and with its strong-Wolfe line search (torch's robust setting).
Reported per size: warm end-to-end time (targets + optimisation; images pre-loaded and resized for
all), time per function evaluation, the final losses of every result under the same PyTorch
evaluator, and each reference's loss after as many iterations as it completes in JAX's time.

    python experiments/bench_gatys.py --quick   # 256 px, 50 iterations, 5 rounds
    python experiments/bench_gatys.py           # 256 and 512 px, 50 iterations, 5 rounds
    python experiments/bench_gatys.py --linesearch-variants   # also jaxopt's line searches, once
    python experiments/bench_gatys.py --smoke   # 32 px, 2 iterations, 1 round, JAX and PyTorch without line
                                                # search, a temporary folder; not the strong-Wolfe reference
                                                # or jaxopt's line searches (a long compile: add
                                                # --linesearch-variants for one of them)
"""

import argparse
import os
import time

HERE = os.path.dirname(os.path.abspath(__file__))

import harness  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch_reference as tr  # noqa: E402

from nst_jax import gatys, vgg19_params  # noqa: E402
from nst_jax import weights as W  # noqa: E402

load_pair = harness.load_pair


def torch_run(vgg, c, s, iters, line_search=None):
    """PyTorch reference: optimise pixel values in 0..255 as neural-style-pt does (on [0, 1] values
    torch.optim.LBFGS's first curvature pair falls under its 1e-10 threshold and it diverges).
    ``line_search=None`` is neural-style-pt's setting; ``"strong_wolfe"`` is torch's robust one."""
    ct, st = tr.nchw(c[None]), tr.nchw(s[None])
    obj = tr.GatysObjective(vgg, ct, st)

    def on_255(y):
        return obj(y / 255.0)

    y, evals = tr.lbfgs(on_255, ct * 255.0, iters, line_search=line_search)
    return (y / 255.0).clamp(0, 1), evals


def evaluate(vgg, c, s, x_nhwc):
    obj = tr.GatysObjective(vgg, tr.nchw(c[None]), tr.nchw(s[None]))
    with torch.no_grad():
        terms = {k: float(v) for k, v in obj.terms(tr.nchw(x_nhwc[None])).items()}
    terms["total"] = sum(terms.values())
    return terms


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sizes", type=int, nargs="+")
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--linesearch-variants", action="store_true")
    ap.add_argument("--no-wolfe", action="store_true",
                    help="leave out the strong-Wolfe reference (it costs 10-20%% more evaluations)")
    harness.add_smoke(ap)
    a = ap.parse_args()
    if a.smoke:
        harness.smoke_results()
        a.sizes, a.iters, a.repeats, a.no_wolfe = [32], 2, 1, True  # jaxopt's only with --linesearch-variants
    sizes = a.sizes or ([256] if a.quick else [256, 512])
    params = vgg19_params()
    # PyTorch reads the same weights as JAX: the .h5 in nst_jax's cache, or NST_JAX_WEIGHTS' .npz
    vgg = tr.CaffeVGG19(os.environ.get("NST_JAX_WEIGHTS") or W.cached_h5()).to(tr.DEVICE)
    print(f"machine: {harness.machine()}; {harness.versions()}; torch threads {torch.get_num_threads()}")
    results = {}
    for size in sizes:
        c, s = load_pair(size)
        last = {}

        def jax_fn():
            out, rep = gatys.stylize(c, s, size=None, iters=a.iters, weights=params)
            last["jax"] = (out, rep)
            return out

        def torch_fn(ls):
            def f():
                x, ev = torch_run(vgg, c, s, a.iters, ls)
                last[ls or "none"] = (tr.nhwc(x)[0], ev)
                return x
            return f

        refs = {"torch": None} if a.no_wolfe else {"torch": None, "torch_wolfe": "strong_wolfe"}
        r = harness.compare({"jax": jax_fn, **{n: torch_fn(ls) for n, ls in refs.items()}}, a.repeats,
                            sync=harness.sync_all)
        q = {"jax": evaluate(vgg, c, s, last["jax"][0])}
        ev = {"jax": last["jax"][1]["evaluations"]}
        per = {"jax": last["jax"][1]["optimize_seconds"] / ev["jax"]}
        at_jax_time = {}
        for name, ls in refs.items():
            x, n = last[ls or "none"]
            q[name], ev[name] = evaluate(vgg, c, s, x), n
            per[name] = r[name]["median"] / n
            # iterations this reference completes in JAX's warm end-to-end time
            k = max(1, int(round(a.iters * r["jax"]["median"] / r[name]["median"])))
            xk, _ = torch_run(vgg, c, s, k, ls)
            at_jax_time[name] = (k, evaluate(vgg, c, s, tr.nhwc(xk)[0]))
        results[size] = {"timing": r, "quality": q, "evaluations": ev, "per_eval": per,
                         "at_jax_time": at_jax_time}
        h, w = c.shape[:2]
        names = ["jax", *refs]
        print(f"\n{h}x{w}, {a.iters} iterations, {a.repeats} alternated rounds")
        print(harness.row(["", "JAX (nst_jax)", "PyTorch, no line search",
                           "PyTorch, strong Wolfe"][:len(names) + 1]))
        print(harness.row(["---"] * (len(names) + 1)))
        print(harness.row(["warm end to end"] + [harness.fmt(r[n]) for n in names]))
        print(harness.row(["PyTorch / JAX (medians)", ""] +
                          [f"**{r[n]['median'] / r['jax']['median']:.2f}×**" for n in names[1:]]))
        print(harness.row(["first run (JAX compiles)"] + [f"{r[n]['warmup']:.1f} s" for n in names]))
        print(harness.row(["function evaluations"] + [ev[n] for n in names]))
        print(harness.row(["time per evaluation"] + [f"{per[n] * 1e3:.0f} ms" for n in names]))
        for term in ("total", "content", "style", "tv"):
            print(harness.row([f"final {term} loss"] + [f"{q[n][term]:.4g}" for n in names]))
        print(harness.row(["total loss reached in JAX's time", f"{q['jax']['total']:.4g}"] +
                          [f"{at_jax_time[n][1]['total']:.4g} ({at_jax_time[n][0]} iterations)"
                           for n in names[1:]]), flush=True)

    if a.linesearch_variants:
        import jaxopt

        c, s = load_pair(sizes[0])
        cfg = gatys.Config()
        p = gatys.with_winograd(params)
        targets = jax.jit(gatys.compute_targets, static_argnums=(4,))(
            p, jnp.asarray(c[None]), [jnp.asarray(s[None])], [1.0], cfg)
        wts = {"content": jnp.float32(5), "style": jnp.float32(100), "tv": jnp.float32(5e-4),
               "style_layers": jnp.ones(5, jnp.float32)}
        print(f"\njaxopt.LBFGS line searches, {sizes[0]} px, {a.iters} iterations, one run each")
        print(harness.row(["configuration", "evaluations", "seconds (after compile)", "final loss"]))
        print(harness.row(["---"] * 4))
        variants = [("backtracking, init 'increase' (jaxopt default init)", dict(linesearch="backtracking")),
                    ("backtracking, init 'max', max step 1",
                     dict(linesearch="backtracking", linesearch_init="max", max_stepsize=1.0)),
                    ("zoom, init 'max', max step 1",
                     dict(linesearch="zoom", linesearch_init="max", max_stepsize=1.0))]
        for name, kw in variants[:1] if a.smoke else variants:  # smoke: one compile of jaxopt's solver
            def fun(x, p=p):
                return gatys.gatys_loss(p, x, targets, wts, cfg)

            solver = jaxopt.LBFGS(fun=fun, has_aux=True, history_size=100, maxiter=a.iters, tol=0.0,
                                  **kw)
            run = jax.jit(lambda x: solver.run(x))
            x0 = jnp.asarray(c[None])
            jax.block_until_ready(run.lower(x0).compile())
            t = time.perf_counter()
            out = jax.block_until_ready(run(x0))
            dt = time.perf_counter() - t
            q = evaluate(vgg, c, s, np.clip(np.asarray(out.params[0]), 0, 1))
            print(harness.row([name, int(out.state.num_fun_eval), f"{dt:.1f}", f"{q['total']:.4g}"]),
                  flush=True)
    tag = "_".join(str(s) for s in sizes) + ("" if a.iters == 50 else f"_{a.iters}it") + harness.backend_tag()
    harness.save(harness.result_path("gatys", f"bench_gatys_{tag}.json"), results)


if __name__ == "__main__":
    main()
