"""Run a tiny AdaIN training in its own process (for the sharding and kill/resume tests).

    python tests/train_worker.py CKPT_DIR STEPS CKPT_EVERY [--delay S] [--resume] [--out PARAMS.npz]

Prints one JSON line: the summary, the per-step losses and the device count.
"""

import argparse
import json
import sys

import jax
import numpy as np

from nst_jax import adain_train as AT
from nst_jax.compile_cache import enable_compilation_cache
from nst_jax.data import ArraySource
from nst_jax.train import TrainConfig, train
from nst_jax.vgg import vgg19_params


def sources(delay=0.0):
    rng = np.random.default_rng(0)
    content = [rng.random((40, 48, 3)).astype(np.float32) for _ in range(6)]
    style = [rng.random((36, 36, 3)).astype(np.float32) ** (1 + k) for k in range(4)]
    return ArraySource(content, "synthetic-content", delay), ArraySource(style, "synthetic-style", delay)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ckpt_dir")
    ap.add_argument("steps", type=int)
    ap.add_argument("ckpt_every", type=int)
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--out")
    args = ap.parse_args()
    enable_compilation_cache()  # the tests start this worker up to three times with the same program
    content, style = sources(args.delay)
    task = AT.AdaINTask(vgg19_params(), content, style, crop=32, resize=36, batch_size=4, seed=0, prefetch=1)
    cfg = TrainConfig(steps=args.steps, batch_size=4, ckpt_every=args.ckpt_every,
                      log_every=1)
    losses = []
    summary = train(task, cfg, args.ckpt_dir, resume=args.resume,
                    callback=lambda p: (losses.append(p.metrics["loss"]), print("step", p.step, flush=True)))
    params = summary.pop("params")
    if args.out:
        np.savez(args.out, **{jax.tree_util.keystr(k): np.asarray(v)
                              for k, v in jax.tree_util.tree_leaves_with_path(params)})
    print(json.dumps({"summary": summary, "losses": losses, "devices": jax.device_count()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
