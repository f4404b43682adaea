"""Why does Gatys on an NVIDIA GPU end at a worse loss in JAX than in PyTorch?  (Run it on the GPU.)

On the CPU both libraries end at 3.65-3.73e6 (384x512 px, 300 L-BFGS iterations, several perturbed starts);
on a GPU their convolutions and products may round to TensorFloat-32.  This script measures, on the GPU:

1. **the objective at fixed points** (the content image, and the content plus uniform noise of amplitude 0.1):
   JAX's loss and gradient at its default float32 precision and with ``jax_default_matmul_precision``
   "highest" (no TF32 in any convolution or product), PyTorch's with cuDNN TF32 on (its default) and off,
   each against PyTorch with TF32 off.  A gap here is a difference in the objective, not in the solver;
2. **the trajectories**: the loss every 10 iterations of 300 (JAX: its own loss after each chunk and its
   count of rejected trial points; PyTorch: torch.optim.LBFGS stepped 10 iterations at a time, which keeps
   its state, so the iterates are those of one call, and the loss is its last evaluation's, at the point
   before its last step) for the same four settings;
3. every final image scored by one evaluator: PyTorch, float32, TF32 off.

Run it a second time with ``XLA_FLAGS=--xla_gpu_autotune_level=0 ... --tag autotune0 --jax-only
--precisions default`` to see whether XLA's choice of convolution algorithm matters.

    python experiments/gatys_gpu_diagnosis.py --size 512 --iters 300
    python experiments/gatys_gpu_diagnosis.py --smoke   # 32 px, 2 iterations, default precision, a temporary
                                                        # folder; JAX's objective at the fixed points left out
                                                        # (a program holding the weights as constants: a long
                                                        # compile), PyTorch's there
"""

import argparse
import json
import os
import time

HERE = os.path.dirname(os.path.abspath(__file__))

import harness  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch_reference as tr  # noqa: E402
from bench_gatys import evaluate  # noqa: E402

from nst_jax import gatys, vgg19_params  # noqa: E402
from nst_jax import weights as W  # noqa: E402


def set_torch_tf32(on: bool):
    torch.backends.cudnn.allow_tf32 = on
    torch.backends.cuda.matmul.allow_tf32 = False  # PyTorch's default, both ways


def torch_value_grad(obj, x_nhwc):
    x = tr.nchw(x_nhwc[None]).requires_grad_(True)
    loss = obj(x)
    loss.backward()
    return float(loss.detach()), tr.nhwc(x.grad)[0]


def jax_value_grad(params, c, s, x_nhwc):
    cfg = gatys.Config()
    targets = jax.jit(gatys.compute_targets, static_argnums=(4,))(
        params, jnp.asarray(c[None]), [jnp.asarray(s[None])], [1.0], cfg)
    wts = gatys.LossWeights().as_arrays(len(cfg.objective.style_layers))

    def f(x):
        return gatys.gatys_loss(params, x, targets, wts, cfg)[0]

    v, g = jax.jit(jax.value_and_grad(f))(jnp.asarray(x_nhwc[None]))
    return float(v), np.asarray(g[0])


def torch_trajectory(obj, x0, iters, every):
    y = (tr.nchw(x0[None]) * 255.0).clone().requires_grad_(True)
    opt = torch.optim.LBFGS([y], lr=1.0, max_iter=every, max_eval=every + 1, history_size=100,
                            tolerance_grad=-1.0, tolerance_change=-1.0)
    last = [0.0]

    def closure():
        opt.zero_grad()
        loss = obj(y / 255.0)
        loss.backward()
        last[0] = float(loss.detach())
        return loss

    traj = []
    tr.sync()
    t = time.perf_counter()
    for done in range(every, iters + 1, every):
        opt.step(closure)
        traj.append([done, last[0]])  # the loss at the last evaluated point (one iteration behind)
    tr.sync()
    return (y.detach() / 255.0).clamp(0, 1), traj, time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("--tag", default="")
    ap.add_argument("--jax-only", action="store_true")
    ap.add_argument("--precisions", nargs="+", default=["default", "highest"], choices=["default", "highest"])
    harness.add_smoke(ap)
    a = ap.parse_args()
    if a.smoke:
        harness.smoke_results()
        a.size, a.iters, a.every, a.precisions = 32, 2, 1, ["default"]
    params = vgg19_params()
    vgg = tr.CaffeVGG19(os.environ.get("NST_JAX_WEIGHTS") or W.cached_h5()).to(tr.DEVICE)
    c, s = harness.load_pair(a.size)
    h, w = c.shape[:2]
    rng = np.random.default_rng(0)
    noisy = np.clip(c + rng.uniform(-0.1, 0.1, c.shape), 0, 1).astype(np.float32)
    points = {"content": c, "content+noise": noisy}
    out = {"machine": harness.machine(), "versions": harness.versions(), "size": [h, w], "iters": a.iters,
           "xla_flags": os.environ.get("XLA_FLAGS", ""), "objective": {}, "runs": {}}

    # 1. the objective at fixed points; reference: PyTorch, TF32 off
    set_torch_tf32(False)
    obj = tr.GatysObjective(vgg, tr.nchw(c[None]), tr.nchw(s[None]))
    ref = {k: torch_value_grad(obj, x) for k, x in points.items()}
    variants = {}
    # (--smoke: not JAX's, each a program of its own with the weights as constants, a long compile)
    for prec in [] if a.smoke else a.precisions:
        with jax.default_matmul_precision(None if prec == "default" else "highest"):
            jax.clear_caches()
            variants[f"jax_{prec}"] = {k: jax_value_grad(params, c, s, x) for k, x in points.items()}
    if not a.jax_only:
        set_torch_tf32(True)
        obj_tf32 = tr.GatysObjective(vgg, tr.nchw(c[None]), tr.nchw(s[None]))
        variants["torch_tf32"] = {k: torch_value_grad(obj_tf32, x) for k, x in points.items()}
    for name, vals in variants.items():
        out["objective"][name] = {}
        for k, (v, g) in vals.items():
            rv, rg = ref[k]
            e = {"loss": v, "loss_rel_err": abs(v - rv) / abs(rv),
                 "grad_rel_err": float(np.linalg.norm(g - rg) / np.linalg.norm(rg))}
            out["objective"][name][k] = e
            print(f"objective {name:12s} at {k:14s}: loss {v:.6g} (rel. err {e['loss_rel_err']:.1e}), "
                  f"gradient rel. err {e['grad_rel_err']:.1e}", flush=True)

    # 2. trajectories, 3. one evaluator
    for prec in a.precisions:
        name = f"jax_{prec}"
        traj = []

        def cb(ev, traj=traj):
            traj.append([ev.iteration, ev.loss, ev.evaluations])

        with jax.default_matmul_precision(None if prec == "default" else "highest"):
            jax.clear_caches()  # the compiled programs (JAX's jit cache) are made anew at this precision
            gatys.stylize(c, s, size=None, iters=a.iters, weights=params)  # compile
            traj.clear()
            t = time.perf_counter()
            x, rep = gatys.stylize(c, s, size=None, iters=a.iters, weights=params, callback=cb,
                                   save_every=a.every)
            dt = time.perf_counter() - t
        set_torch_tf32(False)
        terms = evaluate(vgg, c, s, x)
        out["runs"][name] = {"seconds": dt, "final": terms, "trajectory": traj,
                             "rejected_steps": rep["scales"][-1].get("rejected_steps")}
        print(f"{name}: final {terms['total']:.4g} (content {terms['content']:.4g}, "
              f"style {terms['style']:.4g}) rejected {out['runs'][name]['rejected_steps']}, "
              f"{dt:.1f} s (with a save every {a.every})",
              flush=True)
    if not a.jax_only:
        for on in (True, False):
            name = f"torch_tf32_{'on' if on else 'off'}"
            set_torch_tf32(on)
            obj_run = tr.GatysObjective(vgg, tr.nchw(c[None]), tr.nchw(s[None]))
            y, traj, dt = torch_trajectory(obj_run, c, a.iters, a.every)
            set_torch_tf32(False)
            terms = evaluate(vgg, c, s, tr.nhwc(y)[0])
            out["runs"][name] = {"seconds": dt, "final": terms, "trajectory": traj}
            print(f"{name}: final {terms['total']:.4g} (content {terms['content']:.4g}, style "
                  f"{terms['style']:.4g}), {dt:.1f} s", flush=True)
    names = list(out["runs"])
    print("\niteration | " + " | ".join(names))
    for i in range(a.iters // a.every):
        cells = [f"{out['runs'][n]['trajectory'][i][1]:.4g}" for n in names]
        print(f"{(i + 1) * a.every} | " + " | ".join(cells))
    tag = f"{h}x{w}_{a.iters}" + (f"_{a.tag}" if a.tag else "") + harness.backend_tag()
    harness.save(harness.result_path("gpu", f"gatys_gpu_diagnosis_{tag}.json"), out)
    print(json.dumps({n: out["runs"][n]["final"]["total"] for n in names}))


if __name__ == "__main__":
    main()
