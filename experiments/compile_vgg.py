"""What a program costs before its first run: VGG-19's value and input gradient (Gatys's layers, the weights
an argument, as the solvers compile it), traced and lowered, compiled by XLA, then run; for each convolution
algorithm.  The compile is most of a first run's wait at a new size (BENCHMARKS "The first run").

    python experiments/compile_vgg.py                   # 256 and 512 px, direct and auto (Winograd)
    python experiments/compile_vgg.py --tag _previous   # the same against another checkout of the package:
        PYTHONPATH=/path/to/checkout python experiments/compile_vgg.py --tag _previous
    python experiments/compile_vgg.py --smoke           # 32 px, Winograd only, one run, a temporary folder

Each algorithm is measured in a fresh process (NST_JAX_CONV is read when a program is traced), without the
persistent compilation cache.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import harness  # noqa: E402

LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1")


def measure(size: int, repeats: int) -> dict:
    """In this process: seconds to trace and lower, to compile, and the median of ``repeats`` runs."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    import nst_jax
    from nst_jax.vgg import with_winograd

    params = with_winograd(nst_jax.vgg19_params())
    x = np.random.default_rng(0).uniform(size=(1, size * 3 // 4, size, 3)).astype(np.float32)

    def loss(im, p):
        return sum(jnp.mean(v ** 2) for v in nst_jax.vgg19_features(p, im, LAYERS).values())

    t0 = time.perf_counter()
    lowered = jax.jit(jax.value_and_grad(loss)).lower(x, params)
    t1 = time.perf_counter()
    program = lowered.compile()
    t2 = time.perf_counter()
    run = harness.compare({"run": lambda: program(x, params)}, repeats, sync=jax.block_until_ready)["run"]
    return {"trace_and_lower": t1 - t0, "compile": t2 - t1, "run": run["median"],
            "package": os.path.dirname(nst_jax.__file__)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--convs", nargs="+", default=["direct", "auto"])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--tag", default="")
    ap.add_argument("--one", nargs=2, metavar=("CONV", "SIZE"), help=argparse.SUPPRESS)  # a child process
    harness.add_smoke(ap)
    a = ap.parse_args()
    if a.one:
        print(json.dumps(measure(int(a.one[1]), a.repeats)))
        return
    if a.smoke:
        harness.smoke_results()
        a.sizes, a.convs, a.repeats = [32], ["auto"], 1
    print(f"machine: {harness.machine()}; {harness.versions()}")
    print(harness.row(["size", "conv", "trace + lower", "compile", "run (median)"]))
    print(harness.row(["---"] * 5))
    results = {}
    for size in a.sizes:
        for conv in a.convs:
            env = {**os.environ, "NST_JAX_CONV": conv, "JAX_ENABLE_COMPILATION_CACHE": "false"}
            cmd = [sys.executable, __file__, "--one", conv, str(size), "--repeats", str(a.repeats)]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if proc.returncode != 0:
                sys.exit(f"compile_vgg: {conv} at {size} px failed: {proc.stderr.strip().splitlines()[-1:]}")
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            results[f"{size}/{conv}"] = r
            print(harness.row([f"{size * 3 // 4}x{size}", conv, f"{r['trace_and_lower']:.2f} s",
                               f"{r['compile']:.2f} s", f"{r['run'] * 1e3:.0f} ms"]), flush=True)
    results["machine"], results["versions"] = harness.machine(), harness.versions()
    harness.save(harness.result_path("vgg", f"compile_vgg{a.tag}.json"), results)


if __name__ == "__main__":
    main()
