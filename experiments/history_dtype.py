"""L-BFGS history in bfloat16 against float32: the loss reached after the same iterations, on the
Gatys objective at neural-style's defaults, for a few content x style pairs and starts.

    python experiments/history_dtype.py                  # 256 px, 100 iterations
    python experiments/history_dtype.py --size 512 --iters 100
    python experiments/history_dtype.py --smoke          # 32 px, 2 iterations, one pair, both histories, one
                                                         # perturbed start (not the other two), a temporary
                                                         # folder

Each pair runs from the content image and from two perturbed starts (content + uniform noise of 2/255,
seeded): single L-BFGS runs of this objective differ by a few percent with the start alone, so the
comparison is of medians.  Memory: each pair costs 24 bytes a pixel in float32, 12 in bfloat16.
"""

import argparse
import statistics

import harness  # noqa: E402
import numpy as np  # noqa: E402

from nst_jax import gatys, vgg19_params  # noqa: E402

PAIRS = (("tubingen.jpg", "starry_night.jpg"), ("golden_gate.jpg", "the_scream.jpg"),
         ("hoovertowernight.jpg", "shipwreck.jpg"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--iters", type=int, default=100)
    harness.add_smoke(ap)
    a = ap.parse_args()
    pairs, seeds = PAIRS, (None, 1, 2)
    if a.smoke:
        harness.smoke_results()
        a.size, a.iters, pairs, seeds = 32, 2, PAIRS[:1], (1,)
    params = vgg19_params()
    rows, results = [], {}
    for content_name, style_name in pairs:
        c, s = harness.load_pair(a.size, content_name, style_name)
        for dtype in ("float32", "bfloat16"):
            losses = []
            for seed in seeds:
                noise = 0 if seed is None else np.random.default_rng(seed).uniform(-2 / 255, 2 / 255, c.shape)
                init = np.clip(c + noise, 0, 1).astype(np.float32)
                _, rep = gatys.stylize(c, s, size=None, iters=a.iters, weights=params, init=init,
                                       history_dtype=dtype)
                losses.append(rep["loss"])
            results[f"{content_name} x {style_name} {dtype}"] = losses
            rows.append((content_name, style_name, dtype, losses))
            print(content_name, style_name, dtype, [f"{v:.4g}" for v in losses], flush=True)
    print(f"\n{a.size} px, {a.iters} iterations; machine: {harness.machine()}")
    print(harness.row(["pair", "float32 history: losses (median)", "bfloat16 history: losses (median)",
                       "bfloat16 / float32 (medians)"]))
    print(harness.row(["---"] * 4))
    for k in range(0, len(rows), 2):
        f32, b16 = rows[k][3], rows[k + 1][3]
        m32, m16 = statistics.median(f32), statistics.median(b16)
        cells = [", ".join(f"{v:.4g}" for v in f32) + f" ({m32:.4g})",
                 ", ".join(f"{v:.4g}" for v in b16) + f" ({m16:.4g})"]
        print(harness.row([f"{rows[k][0]} × {rows[k][1]}", *cells, f"{m16 / m32:.3f}"]))
    harness.save(harness.result_path("gatys", f"history_dtype_{a.size}_{a.iters}.json"), results)


if __name__ == "__main__":
    main()
