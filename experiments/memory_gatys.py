"""Peak memory of nst_jax.stylize (L-BFGS) against image size, with and without --remat.

Each configuration runs in a fresh process (2 iterations, which is enough to reach the steady-state
peak: the L-BFGS history buffers are allocated up front) and reports its peak resident memory.  A
straight line peak = a + b * pixels is fitted for each mode and solved for the largest square image
that stays under the memory budget.

    python experiments/memory_gatys.py                     # 256, 512, 1024 px
    python experiments/memory_gatys.py --sizes 512 1024 1536 --budget-gb 22
    python experiments/memory_gatys.py --smoke   # 32 px, history 2, without --remat only (one process, one
                                                 # program), results in a temporary folder
"""

import argparse
import json
import os
import subprocess
import sys

import harness

CHILD = r"""
import json, resource, sys, time
import numpy as np
import nst_jax
size, remat, history = int(sys.argv[1]), sys.argv[2] == "1", int(sys.argv[3])
rng = np.random.default_rng(0)
content = rng.uniform(size=(size, size, 3)).astype(np.float32)
style = rng.uniform(size=(size, size, 3)).astype(np.float32)
t = time.perf_counter()
_, rep = nst_jax.stylize(content, style, size=None, iters=2, remat=remat, history=history)
peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"size": size, "remat": remat, "peak_gb": peak_kb / 2**20,
                  "seconds": time.perf_counter() - t}))
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    ap.add_argument("--budget-gb", type=float, default=22.0)
    ap.add_argument("--history", type=int, default=100, help="L-BFGS pairs kept")
    harness.add_smoke(ap)
    a = ap.parse_args()
    remats = (False, True)
    if a.smoke:
        harness.smoke_results()
        a.sizes, a.history, remats = [32], 2, (False,)
    rows = []
    print("| size | remat | peak memory | run time (compile + 2 iterations) |")
    print("| --- | --- | --- | --- |")
    for size in a.sizes:
        for remat in remats:
            r = subprocess.run([sys.executable, "-c", CHILD, str(size), "1" if remat else "0",
                                str(a.history)], capture_output=True, text=True)
            if r.returncode != 0:
                print(f"| {size}² | {remat} | failed: {r.stderr.strip().splitlines()[-1]} | |")
                continue
            row = json.loads(r.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"| {size}² | {'yes' if remat else 'no'} | {row['peak_gb']:.2f} GB | "
                  f"{row['seconds']:.0f} s |", flush=True)
    if a.smoke and len(rows) != len(remats) * len(a.sizes):
        sys.exit("smoke run: a configuration failed")
    import numpy as np

    for remat in remats:
        pts = [(r["size"] ** 2, r["peak_gb"]) for r in rows if r["remat"] == remat]
        if len(pts) >= 2:
            px, gb = np.array(pts[-2:]).T  # the two largest: the per-pixel slope dominates there
            b = (gb[1] - gb[0]) / (px[1] - px[0])
            a0 = gb[1] - b * px[1]
            side = int(np.sqrt((a.budget_gb - a0) / b))
            print(f"history={a.history}, remat={remat}: {b * 2**30 / 1e3:.2f} kB per pixel; "
                  f"largest square under "
                  f"{a.budget_gb:g} GB ≈ {side}² (extrapolated)")
    os.makedirs(os.path.join(harness.RESULTS, "gatys"), exist_ok=True)
    with open(os.path.join(harness.RESULTS, "gatys", f"memory_gatys_history{a.history}.json"), "w") as f:
        json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
