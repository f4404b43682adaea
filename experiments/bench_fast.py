"""Feed-forward (Johnson et al. + instance norm) inference: JAX (nst_jax.feedforward) vs the same network
in PyTorch (torch_reference.TorchTransformNet, PyTorch's fast_neural_style architecture) with the same
weights, same input, same machine, alternated runs.

    python experiments/bench_fast.py                 # 512², batch 1 and 4, 5 rounds
    python experiments/bench_fast.py --quick         # 256², batch 1
    python experiments/bench_fast.py --model PATH    # a trained model (default: freshly initialised)
    python experiments/bench_fast.py --smoke         # 32², batch 1 (not 4), 1 round, results in a temporary
                                                     # folder
"""

import argparse
import os
import tempfile

import harness  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch_reference as tr  # noqa: E402

from nst_jax import feedforward as F  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--size", type=int)
    ap.add_argument("--batches", type=int, nargs="+")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--model")
    harness.add_smoke(ap)
    a = ap.parse_args()
    if a.smoke:
        harness.smoke_results()
        a.size, a.batches, a.repeats = 32, [1], 1
    size = a.size or (256 if a.quick else 512)
    batches = a.batches or ([1] if a.quick else [1, 4])
    model = a.model
    if model is None:  # speed does not depend on the weights' values
        model = os.path.join(tempfile.mkdtemp(), "init.npz")
        F.save_model(model, F.init_net(jax.random.key(0)))
    params, _ = F.load_model(model)
    ref = tr.TorchTransformNet(model).eval().to(tr.DEVICE)
    fn = jax.jit(F.apply_net)
    print(f"machine: {harness.machine()}; {harness.versions()}; torch threads {torch.get_num_threads()}")
    print(harness.row(["what", "JAX", "PyTorch", "PyTorch / JAX"]))
    print(harness.row(["---"] * 4))
    results = {}
    for b in batches:
        x = np.random.default_rng(0).random((b, size, size, 3)).astype(np.float32)
        xj, xt = jnp.asarray(x), tr.nchw(x)

        def t_run():
            with torch.no_grad():
                return ref(xt)

        r = harness.compare({"jax": lambda: fn(params, xj), "torch": t_run}, a.repeats,
                            sync=harness.sync_all)
        results[f"{size} x{b}"] = r
        per_image = r["jax"]["median"] / b * 1e3
        print(harness.row([f"inference {size}², batch {b} (per image: JAX {per_image:.0f} ms)",
                           harness.fmt(r["jax"]), harness.fmt(r["torch"]),
                           f"**{r['torch']['median'] / r['jax']['median']:.2f}×**"]), flush=True)
    tag = ("smoke" if a.smoke else "quick" if a.quick else "full") + harness.backend_tag()
    harness.save(harness.result_path("fast", f"bench_fast_{tag}.json"), results)


if __name__ == "__main__":
    main()
