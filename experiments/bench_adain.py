"""AdaIN: inference (content + style encoding, AdaIN, decoding) and training-step throughput.

JAX (nst_jax.adain) vs the independent PyTorch AdaIN of torch_reference (pytorch-AdaIN's network), same
VGG-19 weights, same decoder weights (the shipped decoder), same inputs, same machine, alternated runs.

    python experiments/bench_adain.py            # inference 512², training 256² batch 8, 5 rounds
    python experiments/bench_adain.py --quick    # inference 256², training 128² batch 4, 5 rounds
    python experiments/bench_adain.py --smoke    # inference 32², training 32² batch 2, 1 round, temp folder
                                                 # (both benchmarks; no larger sizes)
"""

import argparse
import os

import harness  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch_reference as tr  # noqa: E402
from jax.sharding import NamedSharding, PartitionSpec  # noqa: E402

from nst_jax import adain as A  # noqa: E402
from nst_jax import adain_train as AT
from nst_jax import vgg19_params  # noqa: E402
from nst_jax import weights as W  # noqa: E402
from nst_jax.data import ArraySource  # noqa: E402
from nst_jax.train import TrainConfig, TrainState, make_mesh, make_train_step, optimizer  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--size", type=int, help="inference side (default 512; quick 256)")
    ap.add_argument("--train-size", type=int, help="training crop (default 256; quick 128)")
    ap.add_argument("--batch", type=int, help="training batch (default 8; quick 4)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--decoder", default=str(A.DECODER_FILE))
    harness.add_smoke(ap)
    a = ap.parse_args()
    if a.smoke:
        harness.smoke_results()
        a.size, a.train_size, a.batch, a.repeats = 32, 32, 2, 1
    size = a.size or (256 if a.quick else 512)
    tsize = a.train_size or (128 if a.quick else 256)
    batch = a.batch or (4 if a.quick else 8)
    params = vgg19_params()
    decoder, _ = A.load_decoder(a.decoder)
    ref = tr.TorchAdaIN(os.environ.get("NST_JAX_WEIGHTS") or W.cached_h5(), A.CHANNEL_MEANS_FILE,
                        a.decoder).to(tr.DEVICE)
    rng = np.random.default_rng(0)
    print(f"machine: {harness.machine()}; {harness.versions()}; torch threads {torch.get_num_threads()}")
    print(harness.row(["what", "JAX", "PyTorch", "PyTorch / JAX"]))
    print(harness.row(["---"] * 4))
    results = {}

    # inference: one content and one style image, the whole pipeline
    c = rng.random((1, size, size, 3)).astype(np.float32)
    s = rng.random((1, size, size, 3)).astype(np.float32)

    @jax.jit
    def infer(vgg, dec, content, style):
        f = A.encode(vgg, content)[A.ENCODER_LAYER]
        t = A.adain(f, A.encode(vgg, style)[A.ENCODER_LAYER])
        return jnp.clip(A.decode(dec, t), 0, 1)

    cj, sj, ct, st = jnp.asarray(c), jnp.asarray(s), tr.nchw(c), tr.nchw(s)

    def t_infer():
        with torch.no_grad():
            return ref.stylize(ct, st)

    r = harness.compare({"jax": lambda: infer(params, decoder, cj, sj), "torch": t_infer}, a.repeats,
                        sync=harness.sync_all)
    results[f"inference {size}"] = r
    print(harness.row([f"inference {size}² (content + style → image)", harness.fmt(r["jax"]),
                       harness.fmt(r["torch"]), f"**{r['torch']['median'] / r['jax']['median']:.2f}×**"]),
          flush=True)

    # training step: forward, backward, Adam update
    content = ArraySource([rng.random((tsize, tsize, 3)) for _ in range(batch)])
    style = ArraySource([rng.random((tsize, tsize, 3)) ** 2 for _ in range(batch)])
    task = AT.AdaINTask(params, content, style, crop=tsize, resize=tsize, batch_size=batch)
    cfg = TrainConfig(steps=1, batch_size=batch)
    opt = optimizer(cfg)
    mesh = make_mesh()
    state = TrainState.create(decoder, opt)
    # committed to the mesh as train() does, so the warm-up compiles the program that is timed
    holder = {"state": jax.device_put(state, NamedSharding(mesh, PartitionSpec()))}
    step = make_train_step(task, opt, mesh)
    stream = task.batches(0, (0, 1))
    b = next(stream)
    stream.close()
    bj = {k: jnp.asarray(v) for k, v in b.items()}
    bt = {k: tr.nchw(v.astype(np.float32) / 255) for k, v in b.items()}
    topt = torch.optim.Adam(ref.decoder.parameters(), lr=1e-4)

    def j_step():
        holder["state"], m = step(holder["state"], params, bj)
        return m["loss"]

    def t_step():
        topt.zero_grad()
        loss, _, _ = ref.loss(bt["content"], bt["style"])
        loss.backward()
        topt.step()
        return loss

    r = harness.compare({"jax": j_step, "torch": t_step}, a.repeats, sync=harness.sync_all)
    results[f"train {tsize} x{batch}"] = r
    ratio = r["torch"]["median"] / r["jax"]["median"]
    print(harness.row([f"training step {tsize}², batch {batch} (images/s: JAX "
                       f"{batch / r['jax']['median']:.2f}, PyTorch {batch / r['torch']['median']:.2f})",
                       harness.fmt(r["jax"]), harness.fmt(r["torch"]), f"**{ratio:.2f}×**"]), flush=True)
    tag = ("smoke" if a.smoke else "quick" if a.quick else "full") + harness.backend_tag()
    harness.save(harness.result_path("adain", f"bench_adain_{tag}.json"), results)


if __name__ == "__main__":
    main()
