"""Which library XLA:CPU hands a convolution to, and whether the other is faster: VGG-19's 3x3 convolution
shapes at 256 px (forward, and forward + input gradient), float32 and bfloat16, under XLA:CPU's library
options (jaxlib 0.10.2: YNNPACK by default for single convolutions and matrix products, Eigen with YNNPACK
off).  XNNPACK's and oneDNN's fusion flags take only dot, eltwise and reduce: with them on and YNNPACK off a
convolution stays Eigen's (the optimised HLO shows a plain `convolution`), so they are not rows here.  Each
option in a fresh process (XLA_FLAGS is read once).

    python experiments/xla_cpu_convs.py            # 5 rounds a shape
    python experiments/xla_cpu_convs.py --smoke    # 8 px, one round, float32, a temporary folder
"""

import argparse
import json
import os
import subprocess
import sys

import harness  # noqa: E402

OFF = "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution,-individual_dot"
OPTIONS = {  # name: XLA_FLAGS
    "ynnpack (default)": "",
    "eigen": OFF,
}
SHAPES = [(32, 512, 512), (64, 256, 256), (128, 128, 128), (256, 64, 64)]  # side, Cin, Cout (256 px input)


def measure(dtype: str, scale: int, repeats: int) -> dict:
    """In this process: median ms of each shape's forward and forward + input gradient."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax import lax

    def conv(x, w):
        return lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                        preferred_element_type=jnp.float32)

    fwd = jax.jit(conv)
    grad = jax.jit(jax.grad(lambda x, w: jnp.sum(conv(x, w) ** 2)))
    rng = np.random.default_rng(0)
    out = {}
    for side, cin, cout in SHAPES:
        s = max(2, side // scale)
        x = jnp.asarray(rng.standard_normal((1, s, s, cin)), dtype)
        w = jnp.asarray(rng.standard_normal((3, 3, cin, cout)) * 0.05, dtype)
        passes = {"forward": lambda: fwd(x, w), "forward + input gradient": lambda: grad(x, w)}
        timed = harness.compare(passes, repeats, sync=jax.block_until_ready)
        for name, r in timed.items():
            out[f"{side}x{cin}->{cout} {name}"] = r["median"] * 1e3
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--one", nargs=2, metavar=("DTYPE", "SCALE"), help=argparse.SUPPRESS)  # a child process
    harness.add_smoke(ap)
    a = ap.parse_args()
    if a.one:
        print(json.dumps(measure(a.one[0], int(a.one[1]), a.repeats)))
        return
    scale, repeats = (32, 1) if a.smoke else (1, a.repeats)
    dtypes, options = ("float32", "bfloat16"), OPTIONS
    if a.smoke:
        harness.smoke_results()
        dtypes = ("float32",)
    print(f"machine: {harness.machine()}; {harness.versions()}")
    results = {"machine": harness.machine(), "versions": harness.versions()}
    for dtype in dtypes:
        table = {}
        for option, flags in options.items():
            env = {**os.environ, "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} {flags}".strip()}
            cmd = [sys.executable, __file__, "--one", dtype, str(scale), "--repeats", str(repeats)]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if proc.returncode != 0:
                sys.exit(f"xla_cpu_convs: {option} failed: {proc.stderr.strip().splitlines()[-1:]}")
            table[option] = json.loads(proc.stdout.strip().splitlines()[-1])
        results[dtype] = table
        print(f"\n{dtype}, ms (median of {repeats})")
        print(harness.row(["shape, pass", *options]))
        print(harness.row(["---"] * (len(options) + 1)))
        for key in table["ynnpack (default)"]:
            print(harness.row([key, *(f"{table[o][key]:.1f}" for o in options)]))
    harness.save(harness.result_path("vgg", "xla_cpu_convs.json"), results)


if __name__ == "__main__":
    main()
