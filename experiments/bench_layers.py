"""Where the time of VGG-19 goes, layer by layer: each distinct 3x3 convolution of VGG-19 up to relu5_1 at
one image size, forward and input gradient (what Gatys et al. evaluate every iteration), in each way XLA:CPU
can be asked to compute it, against PyTorch (oneDNN) on the same shapes in the same run, alternated; then
the Gram matrix of each style layer.

JAX ways:
  direct          the product's ``lax.conv`` path in float32 (``nst_jax.vgg.conv3x3(conv="direct")``)
  winograd        the product's Winograd F(4x4, 3x3) path in float32 (``conv="winograd"``)
  direct-bf16     the product's ``lax.conv`` path on a bfloat16 picture (``--dtype bfloat16``): bfloat16
                  operands summed in float32, its explicit input-gradient rule
  winograd-bf16   the product's Winograd path on a bfloat16 picture: input transform and 36 products in
                  bfloat16 (float32 sums), the output transform in float32
  shifted-bf16    the product's nine 1x1 products of the picture shifted by each kernel tap
                  (``conv="shifted"``), bfloat16, float32 sums: what ``--dtype bfloat16`` runs at >=256
                  channels on CPU
PyTorch ways: ``torch`` (float32) and ``torch-bf16`` (bfloat16 tensors, oneDNN's own accumulation).

Each way's forward result is also compared with a float64 NumPy convolution of the same input (relative
Frobenius error): the price in accuracy of each way.  GFLOP/s counts the direct convolution's
2 * 9 * Cin * Cout operations per output pixel, whatever a way actually does, so the column compares times.

    python experiments/bench_layers.py                 # 256 px (the warm stylize benchmark's size), 5 rounds
    python experiments/bench_layers.py --size 512 --repeats 7
    python experiments/bench_layers.py --smoke         # 32 px, two of the shapes, 1 round, results in a
                                                       # temporary folder
"""

import argparse

import harness  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from nst_jax.vgg import conv3x3, winograd_kernel  # noqa: E402

BF16 = jnp.bfloat16
F32 = jnp.float32


def shapes(size: int):
    """(layer, side, Cin, Cout, how many of VGG-19's layers up to relu5_1 have this shape)."""
    return [("conv1_1", size, 3, 64, 1), ("conv1_2", size, 64, 64, 1),
            ("conv2_1", size // 2, 64, 128, 1), ("conv2_2", size // 2, 128, 128, 1),
            ("conv3_1", size // 4, 128, 256, 1), ("conv3_2..4", size // 4, 256, 256, 3),
            ("conv4_1", size // 8, 256, 512, 1), ("conv4_2..4", size // 8, 512, 512, 3),
            ("conv5_1", size // 16, 512, 512, 1)]


# --- the ways --------------------------------------------------------------------------------------------

# Each way takes the picture, the kernel and its Winograd transform (made once on the host, as VGG-19's are
# for Gatys's objective: nst_jax.vgg.with_winograd).
WAYS = {"direct": lambda x, k, u: conv3x3(x, k, conv="direct"),
        "winograd": lambda x, k, u: conv3x3(x, k, conv="winograd", winograd=u),
        "direct-bf16": lambda x, k, u: conv3x3(x.astype(BF16), k, conv="direct"),
        "winograd-bf16": lambda x, k, u: conv3x3(x.astype(BF16), k, conv="winograd", winograd=u),
        "shifted-bf16": lambda x, k, u: conv3x3(x.astype(BF16), k, conv="shifted")}


def reference(x, kernel):
    """Float64 NumPy: the 3x3 SAME convolution as nine shifted products."""
    x, k = np.asarray(x, np.float64), np.asarray(kernel, np.float64)
    _, h, w, _ = x.shape
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    return sum(xp[:, a: a + h, b: b + w] @ k[a, b] for a in range(3) for b in range(3))


def rel_error(y, ref) -> float:
    return float(np.linalg.norm(np.asarray(y, np.float64) - ref) / np.linalg.norm(ref))


# --- timing ----------------------------------------------------------------------------------------------

def jax_pair(f, x, k, dy):
    u = jax.device_put(winograd_kernel(np.asarray(k)))
    fwd = jax.jit(f)
    grad = jax.jit(lambda x, k, u, dy: jax.vjp(lambda x: f(x, k, u), x)[1](dy.astype(f(x, k, u).dtype))[0])
    return (lambda: fwd(x, k, u)), (lambda: grad(x, k, u, dy))


def torch_pair(x, k, dy, dtype):
    xt = torch.from_numpy(np.asarray(x)).permute(0, 3, 1, 2).contiguous().to(dtype)
    kt = torch.from_numpy(np.asarray(k)).permute(3, 2, 0, 1).contiguous().to(dtype)
    dyt = torch.from_numpy(np.asarray(dy)).permute(0, 3, 1, 2).contiguous().to(dtype)

    def fwd():
        with torch.no_grad():
            return torch.nn.functional.conv2d(xt, kt, padding=1)

    def grad():  # the input gradient alone, as JAX's program computes it
        return torch.nn.grad.conv2d_input(xt.shape, kt, dyt, padding=1)

    return fwd, grad


def gram_ways(f):
    """Gram matrix F^T F / positions of (positions, C) features: float32, bfloat16 in / float32 out,
    PyTorch."""
    fj = jnp.asarray(f)
    g32 = jax.jit(lambda a: a.T @ a / a.shape[0])
    g16 = jax.jit(lambda a: jnp.matmul(a.T.astype(BF16), a.astype(BF16), preferred_element_type=F32)
                  / a.shape[0])
    ft = torch.from_numpy(np.asarray(f))
    return {"float32": lambda: g32(fj), "bf16": lambda: g16(fj), "torch": lambda: ft.T @ ft / ft.shape[0]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=256, help="the picture's side (square)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--tag", default="", help="suffix for the result file (e.g. the CPU)")
    ap.add_argument("--ways", nargs="+", default=list(WAYS) + ["torch", "torch-bf16"],
                    help="a subset of the ways to time")
    harness.add_smoke(ap)
    a = ap.parse_args()
    if a.smoke:
        harness.smoke_results()
        a.size, a.repeats = 32, 1
    rng = np.random.default_rng(0)
    print(f"machine: {harness.machine()}; {harness.versions()}; torch threads {torch.get_num_threads()}")
    ways = a.ways
    print(harness.row(["layer", "shape", "pass", *ways, "best"]))
    print(harness.row(["---"] * (4 + len(ways))))
    results = {"size": a.size, "machine": harness.machine(), "layers": {}, "gram": {}}
    totals = {(p, w): 0.0 for p in ("forward", "input gradient") for w in ways}
    layers = shapes(a.size)
    if a.smoke:  # two shapes: every way still compiles and runs, in a fraction of the time
        layers = [layers[0], layers[-2]]
    for name, side, cin, cout, count in layers:
        # activations as VGG's are: non-negative (after a ReLU) except the picture itself
        x = rng.uniform(0, 1, (1, side, side, cin)).astype(np.float32)
        k = (rng.standard_normal((3, 3, cin, cout)) / np.sqrt(9 * cin)).astype(np.float32)
        dy = rng.standard_normal((1, side, side, cout)).astype(np.float32)
        ref = reference(x, k)
        xj, kj, dyj = jnp.asarray(x), jnp.asarray(k), jnp.asarray(dy)
        fns = {"forward": {}, "input gradient": {}}
        errors = {}
        for w in ways:
            if w in WAYS:
                fns["forward"][w], fns["input gradient"][w] = jax_pair(WAYS[w], xj, kj, dyj)
            else:
                fns["forward"][w], fns["input gradient"][w] = torch_pair(
                    x, k, dy, torch.bfloat16 if w == "torch-bf16" else torch.float32)
            y = fns["forward"][w]()
            errors[w] = rel_error(y.float().permute(0, 2, 3, 1).numpy() if isinstance(y, torch.Tensor)
                                  else jnp.asarray(y, F32), ref)
        flops = 2 * 9 * cin * cout * side * side
        entry = {"side": side, "cin": cin, "cout": cout, "count": count, "rel_error": errors}
        for pass_, group in fns.items():
            r = harness.compare(group, a.repeats, sync=harness.sync_all)
            best = min(ways, key=lambda w: r[w]["median"])
            entry[pass_] = r
            for w in ways:
                totals[(pass_, w)] += count * r[w]["median"]
            gflops = flops / r[best]["median"] / 1e9  # the input gradient is one convolution too
            print(harness.row([name, f"{side}² {cin}→{cout}", pass_,
                               *[f"{r[w]['median'] * 1e3:.2f}" for w in ways],
                               f"{best} ({gflops:.0f} GFLOP/s)"]), flush=True)
        print(harness.row([name, "", "rel. error vs float64", *[f"{errors[w]:.1e}" for w in ways], ""]),
              flush=True)
        results["layers"][name] = entry
    for pass_ in ("forward", "input gradient"):
        print(harness.row(["VGG-19 to relu5_1", "", pass_,
                           *[f"**{totals[(pass_, w)] * 1e3:.1f}**" for w in ways], ""]))
    results["totals"] = {f"{p}/{w}": t for (p, w), t in totals.items()}

    print("\nGram matrices (ms): float32 | bfloat16 in, float32 accumulation | PyTorch float32")
    grams = [("relu1_1", a.size, 64), ("relu2_1", a.size // 2, 128), ("relu3_1", a.size // 4, 256),
             ("relu4_1", a.size // 8, 512), ("relu5_1", a.size // 16, 512)]
    for layer, side, c in grams[::4] if a.smoke else grams:
        f = rng.uniform(0, 1, (side * side, c)).astype(np.float32)
        r = harness.compare(gram_ways(f), a.repeats, sync=harness.sync_all)
        results["gram"][layer] = r
        print(harness.row([layer, f"{side}² x {c}", *[f"{r[w]['median'] * 1e3:.2f}" for w in r]]), flush=True)
    harness.save(harness.result_path("vgg", f"bench_layers_{a.size}{harness.backend_tag()}{a.tag}.json"),
                 results)


if __name__ == "__main__":
    main()
