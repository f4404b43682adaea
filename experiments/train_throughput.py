"""Training throughput against the hardware's limit: each training step's FLOP count (XLA's own
cost analysis of the compiled step), its time with batches already in memory and with the real data
pipeline, and what this CPU sustains on a large float32 3x3 convolution in XLA and in PyTorch (oneDNN).

    python experiments/train_throughput.py                    # AdaIN 128 px batch 8, fast 128 px batch 4
    python experiments/train_throughput.py --steps 20
    python experiments/train_throughput.py --smoke    # 1 step, 32 px crops, batch 2, a tiny convolution,
                                                      # AdaIN's step only (not the fast network's), timed
                                                      # once, with the data pipeline (not again from
                                                      # memory), a temporary folder
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import harness
import jax
import jax.numpy as jnp
import numpy as np
from harness import machine, save, versions
from jax.sharding import NamedSharding, PartitionSpec

from nst_jax import adain_train as AT
from nst_jax import feedforward_train as FT
from nst_jax.data import ImageFolder
from nst_jax.train import TrainConfig, TrainState, make_mesh, make_train_step, optimizer
from nst_jax.vgg import vgg19_params

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "datasets"


def flops_of(compiled) -> float:
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost.get("flops", float("nan")))


def time_steps(task, batch_size, steps, lr, real_data):
    mesh = make_mesh()
    rep, shard = NamedSharding(mesh, PartitionSpec()), NamedSharding(mesh, PartitionSpec("data"))
    opt = optimizer(TrainConfig(steps=steps, batch_size=batch_size, learning_rate=lr))
    p0 = task.init(jax.random.key(0))
    state = jax.device_put(TrainState.create(p0, opt), rep)
    frozen = jax.device_put(task.frozen, rep)
    step = make_train_step(task, opt, mesh)
    stream = task.batches(0, (0, 1))
    first = jax.device_put(next(stream), shard)
    compiled = step.lower(state, frozen, first).compile()
    flops = flops_of(compiled)
    state, m = step(state, frozen, first)  # warm-up
    jax.block_until_ready(m)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        batch = jax.device_put(next(stream), shard) if real_data else first
        state, m = step(state, frozen, batch)
        jax.block_until_ready(m)
        times.append(time.perf_counter() - t)
    stream.close()
    return flops, statistics.median(times)


def conv_peak(repeats=5, n=8, side=64, channels=256):
    """Seconds and FLOP/s of a 3x3, 256 -> 256 channel convolution on a 8 x 64 x 64 batch (forward)."""
    import torch

    x = np.random.default_rng(0).random((n, side, side, channels), np.float32)
    k = np.random.default_rng(1).random((3, 3, channels, channels), np.float32)
    flops = 2 * n * side * side * channels * channels * 9
    f = jax.jit(lambda x, k: jax.lax.conv_general_dilated(x, k, (1, 1), "SAME",
                                                          dimension_numbers=("NHWC", "HWIO", "NHWC")))
    xj, kj = jnp.asarray(x), jnp.asarray(k)
    f(xj, kj).block_until_ready()
    tj = []
    for _ in range(repeats):
        t = time.perf_counter()
        f(xj, kj).block_until_ready()
        tj.append(time.perf_counter() - t)
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
    kt = torch.from_numpy(k).permute(3, 2, 0, 1).contiguous()
    tt = []
    with torch.no_grad():
        torch.nn.functional.conv2d(xt, kt, padding=1)
        for _ in range(repeats):
            t = time.perf_counter()
            torch.nn.functional.conv2d(xt, kt, padding=1)
            tt.append(time.perf_counter() - t)
    return {"flops": flops, "xla_seconds": statistics.median(tj), "torch_seconds": statistics.median(tt),
            "xla_tflops": flops / statistics.median(tj) / 1e12,
            "torch_tflops": flops / statistics.median(tt) / 1e12}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--crop", type=int, default=128)
    harness.add_smoke(ap)
    a = ap.parse_args()
    results, batches, conv = HERE / "results", {"adain": 8, "fast": 4}, {}
    if a.smoke:
        results = Path(harness.smoke_results())
        a.steps, a.crop, batches = 1, 32, {"adain": 2, "fast": 2}
        conv = dict(repeats=1, n=1, side=8, channels=16)
    vgg = vgg19_params()
    content = ImageFolder(DATA / "imagenet-sample")
    styles = ImageFolder(DATA / "styles")
    from nst_jax import image as im

    starry = im.load_image(HERE.parents[1] / "shared" / "images" / "starry_night.jpg")
    tasks = {
        "adain": (AT.AdaINTask(vgg, content, styles, crop=a.crop, resize=256, batch_size=batches["adain"]),
                  batches["adain"], 1e-4),
    }
    if not a.smoke:  # (--smoke: one task's step, each a long compile of its own: AdaIN's)
        tasks["fast"] = (FT.FastTask(vgg, starry, content, crop=a.crop, resize=384,
                                     batch_size=batches["fast"]), batches["fast"], 1e-3)
    out = {"machine": machine(), "versions": versions(), "crop": a.crop}
    peak = conv_peak(**conv)
    out["conv_peak"] = peak
    print(f"machine: {out['machine']}; {out['versions']}")
    n, side, ch = conv.get("n", 8), conv.get("side", 64), conv.get("channels", 256)
    print(f"3x3 conv {ch}->{ch}, {n}x{side}x{side}: XLA {peak['xla_tflops']:.3f} TFLOP/s, "
          f"PyTorch {peak['torch_tflops']:.3f}")
    for name, (task, bs, lr) in tasks.items():
        if a.smoke:  # one compile of each step: the data pipeline's timing stands for the in-memory one
            flops, t_real = time_steps(task, bs, a.steps, lr, real_data=True)
            t_mem = t_real
        else:
            flops, t_mem = time_steps(task, bs, a.steps, lr, real_data=False)
            _, t_real = time_steps(task, bs, a.steps, lr, real_data=True)
        out[name] = {"batch": bs, "gflop_per_step": flops / 1e9, "seconds_in_memory": t_mem,
                     "seconds_real_data": t_real, "tflops_in_memory": flops / t_mem / 1e12,
                     "images_per_second_real": bs / t_real}
        print(f"{name}: {flops / 1e9:.0f} GFLOP/step; {t_mem:.3f} s/step from memory "
              f"({flops / t_mem / 1e12:.3f} TFLOP/s), {t_real:.3f} s/step with the data pipeline "
              f"({bs / t_real:.2f} images/s)")
    save(str(results / "training" / f"throughput_{a.crop}.json"), out)


if __name__ == "__main__":
    main()
