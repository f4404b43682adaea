"""``nst-jax train``: train an AdaIN decoder or a per-style feed-forward network on the one training loop
(:mod:`nst_jax.train`)."""

from __future__ import annotations

import sys
import time

from ..config import defaults
from ..errors import NSTError
from .common import (
    HelpFormatter,
    Parser,
    distributed_arguments,
    hms,
    non_negative_float,
    positive_int,
    size_or_none,
    training_defaults,
)

NAME = "train"
HELP = "train a feed-forward network (AdaIN decoder, per-style network, SANet)"


def add_parser(sub) -> None:
    from ..adain_train import train_decoder
    from ..feedforward_train import train_fast

    t = sub.add_parser(NAME, help=HELP)
    tsub = t.add_subparsers(dest="train_command", required=True, parser_class=Parser)
    d = training_defaults(train_decoder)
    a = tsub.add_parser("adain", help="train an AdaIN decoder (Huang & Belongie 2017)",
                        formatter_class=HelpFormatter)
    a.add_argument("--style-dir", help="folder of style images (searched recursively); not used by "
                                        "--objective reconstruction")
    training_arguments(a, d, "decoder.npz", "a decoder .npz, or 'shipped'")
    a.add_argument("--style-weight", type=float, default=d["style_weight"])
    a.add_argument("--content-weight", type=float, default=d["content_weight"])
    a.add_argument("--periodic-weight", type=non_negative_float, default=d["periodic_weight"],
                   help="weight of a term against the peaks the decoder's upsamplings put at periods of 2, 4 "
                        "and 8 px (nst_jax.losses.periodic_peak_loss; 0: the paper's loss)")
    a.add_argument("--upsample", choices=("nearest", "bilinear"), default=d["upsample"],
                   help="the decoder's x2 upsamplings: nearest-neighbour as the paper, or bilinear (no "
                        "periodic artefact at 2/4/8 px; --init-from a nearest decoder keeps its weights); "
                        "the exported decoder says which, and `nst-jax adain` uses it")
    a.add_argument("--objective", choices=("adain", "reconstruction"), default=d["objective"],
                   help="the paper's loss, or a cheaper warm-up: reconstruct photos from their own features")
    a.add_argument("--dtype", choices=("float32", "bfloat16"), default=d["dtype"],
                   help="bfloat16: mixed precision for GPU/TPU (activations and convolutions; float32 "
                        "weights, loss and optimiser state); slower on a CPU")
    a.set_defaults(func=train_adain)

    d = training_defaults(train_fast)
    f = tsub.add_parser("fast", help="train a per-style feed-forward network (Johnson et al. 2016)",
                        formatter_class=HelpFormatter)
    f.add_argument("--style", required=True, nargs="+", metavar="IMAGE",
                   help="the style image; several: one conditional network for all of them (Dumoulin et al. "
                        "2017)")
    training_arguments(f, d, "model.npz", "a shipped model's name or a model .npz; for several styles also "
                                           "one one-style network per style, in --style's order",
                        init_many=True)
    f.add_argument("--content-weight", type=float, default=d["content_weight"])
    f.add_argument("--style-weight", type=float, default=d["style_weight"])
    f.add_argument("--tv-weight", type=float, default=d["tv_weight"])
    f.add_argument("--periodic-weight", type=non_negative_float, default=d["periodic_weight"],
                   help="weight of a term against the peaks the network's upsamplings put at periods of 2 "
                        "and 4 px (nst_jax.losses.periodic_peak_loss; 0: none)")
    f.add_argument("--style-norm", choices=("none", "photos"), default=d["style_norm"],
                   help="'photos': divide the style term by the training photos' own style distance to the "
                        "painting, so one --style-weight (about 21) suits near and far paintings alike")
    f.add_argument("--content-layers", nargs="+", default=list(d["content_layers"]), metavar="LAYER",
                   help="VGG-19 layers of the content term")
    f.add_argument("--style-size", type=size_or_none, default=d["style_size"],
                   help="style image's longest side in px")
    f.set_defaults(func=train_fast_command)

    from ..sanet_train import train_sanet

    d = training_defaults(train_sanet)
    n = tsub.add_parser("sanet", help="train a SANet (Park & Lee 2019)", formatter_class=HelpFormatter)
    n.add_argument("--style-dir", required=True, help="folder of style images (searched recursively)")
    training_arguments(n, d, "sanet.npz", "a SANet .npz")
    n.add_argument("--decoder-from", default=d["decoder_from"], metavar="DECODER",
                   help="instead of --init-from: a new transform on this AdaIN decoder (same architecture; "
                        "a decoder .npz, or 'shipped')")
    n.add_argument("--content-weight", type=non_negative_float, default=d["content_weight"])
    n.add_argument("--style-weight", type=non_negative_float, default=d["style_weight"])
    n.add_argument("--identity1-weight", type=non_negative_float, default=d["identity1_weight"],
                   help="the photo and the painting through the network attending to themselves, in pixels")
    n.add_argument("--identity2-weight", type=non_negative_float, default=d["identity2_weight"],
                   help="the same in VGG-19 features (relu1_1..relu5_1)")
    n.add_argument("--periodic-weight", type=non_negative_float, default=d["periodic_weight"],
                   help="weight of a term against the peaks the decoder's upsamplings put at periods of 2, 4 "
                        "and 8 px (0: the paper's loss)")
    n.add_argument("--upsample", choices=("nearest", "bilinear"), default=d["upsample"],
                   help="the decoder's x2 upsamplings (default: the starting network's, nearest for a new "
                        "decoder; the model file says which, and `nst-jax sanet` uses it)")
    n.set_defaults(func=train_sanet_command)


def training_arguments(p, d, model_file, init_help, init_many=False):
    """The options every ``train`` command shares, with the training function's defaults ``d``
    (``init_many``: ``--init-from`` takes several networks)."""
    p.add_argument("--content-dir", help="folder of content photos (searched recursively)")
    p.add_argument("--tfds", help="content from a TFDS dataset instead, NAME[:SPLIT], e.g. coco/2017:train")
    p.add_argument("--tfds-data-dir", default=d["tfds_data_dir"], help="TFDS data_dir")
    p.add_argument("--exclude", action="append", default=list(d["exclude"]), metavar="GLOB",
                   help="leave out of the image folders the files whose names match (repeatable): images "
                        "held back for evaluation")
    p.add_argument("--ckpt-dir", required=True,
                   help=f"checkpoints, metrics.jsonl, loss_curve.png, {model_file}")
    p.add_argument("--steps", type=positive_int, default=d["steps"], help="total steps")
    p.add_argument("--batch-size", type=positive_int, default=d["batch_size"], help="global batch")
    p.add_argument("--learning-rate", "--lr", type=float, default=d["learning_rate"],
                   help="Adam's learning rate")
    p.add_argument("--lr-decay", type=float, default=d["lr_decay"], help="lr / (1 + decay * step)")
    p.add_argument("--warmup", type=int, default=d["warmup"],
                   help="linear learning-rate warm-up steps (useful with --init-from)")
    p.add_argument("--clip-grad-norm", type=float, default=d["clip_grad_norm"], metavar="NORM",
                   help="clip each gradient to this global norm before Adam (0: off); metrics.jsonl logs "
                        "each step's grad_norm to choose it. Resume with the same value")
    p.add_argument("--crop", type=positive_int, default=d["crop"], help="random crop side")
    p.add_argument("--resize", type=positive_int, default=d["resize"], help="shorter side before cropping")
    p.add_argument("--seed", type=int, default=d["seed"])
    p.add_argument("--ckpt-every", type=positive_int, default=d["ckpt_every"])
    p.add_argument("--log-every", type=positive_int, default=d["log_every"])
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    p.add_argument("--init-from", default=d["init_from"], metavar="MODEL", nargs="+" if init_many else None,
                   help=f"start from this trained network ({init_help}; a fresh optimiser), so that training "
                        "accumulates across runs")
    p.add_argument("--weights", default=d["weights"], help="VGG-19 weights file")
    p.add_argument("--cache-images", action="store_true",
                   help="keep the resized content photos in memory after their first read (same batches; "
                        "for a GPU that trains faster than one thread decodes them)")
    distributed_arguments(p, training=True)
    p.add_argument("--quiet", action="store_true")


class TrainProgress:
    """One line per logged step on stderr: step, losses, throughput, ETA."""

    def __init__(self, quiet=False, stream=None):
        self.quiet, self.stream = quiet, stream or sys.stderr
        self._first = None

    def __call__(self, p):
        if self.quiet:
            return
        now = time.perf_counter()
        if self._first is None:
            self._first = (now, p.step)
        t0, s0 = self._first
        eta = (now - t0) / (p.step - s0) * (p.steps - p.step) if p.step > s0 else None
        m = p.metrics
        terms = ", ".join(f"{k} {m[k]:.4g}" for k in ("content", "style", "tv", "identity1", "identity2",
                                                      "periodic") if k in m)
        self.stream.write(f"step {p.step}/{p.steps}  loss {m['loss']:.4g}" + (f" ({terms})" if terms else "")
                          + (f"  {p.images_per_second:.2f} img/s" if p.images_per_second is not None else "")
                          + (f"  ETA {hms(eta)}" if eta else "")
                          + (f"  skipped {m['skipped']}" if m.get("skipped") else "") + "\n")
        self.stream.flush()


def content_source(args) -> str:
    if (args.content_dir is None) == (args.tfds is None):
        raise NSTError("give exactly one content source: --content-dir DIR or --tfds NAME[:SPLIT]")
    return args.content_dir if args.tfds is None else f"tfds:{args.tfds}"


def run_training(args, fn, *positional, **options) -> int:
    """Call a training function with the options every ``train`` command shares; report the outcome."""
    from ..compile_cache import enable_compilation_cache

    enable_compilation_cache()
    from ..train import TrainConfig

    # every TrainConfig field that is an option, by name (``keep`` is not one)
    given = vars(args)
    config = TrainConfig(**{name: given[name] for name in defaults(TrainConfig) if name in given})
    common = dict(config=config, exclude=tuple(args.exclude),
                  crop=args.crop, resize=args.resize, resume=args.resume, init_from=args.init_from,
                  weights=args.weights,
                  tfds_data_dir=args.tfds_data_dir, cache_images=args.cache_images,
                  distributed=args.distributed)
    try:
        summary = fn(*positional, **common, **options, callback=TrainProgress(args.quiet),
                     log=progress_message(args))
    except KeyboardInterrupt as e:
        step = e.args[0]["step"] if e.args and isinstance(e.args[0], dict) else "?"
        print(f"nst-jax: interrupted; checkpoint saved at step {step} in {args.ckpt_dir} "
              "(continue with --resume)", file=sys.stderr)
        return 130
    if not args.quiet:
        print(f"trained to step {summary['step']} in {hms(summary['wall_seconds'])}; model: "
              f"{summary['model']}", file=sys.stderr)
    return 0


def train_adain(args):
    from ..adain_train import train_decoder

    if args.style_dir is None and args.objective == "adain":
        raise NSTError("train adain needs --style-dir (or --objective reconstruction)")
    return run_training(args, train_decoder, content_source(args), args.style_dir, args.ckpt_dir,
                         style_weight=args.style_weight, content_weight=args.content_weight,
                         objective=args.objective, dtype=args.dtype, periodic_weight=args.periodic_weight,
                         upsample=args.upsample)


def train_fast_command(args):
    from ..feedforward_train import train_fast

    style = args.style[0] if len(args.style) == 1 else args.style
    return run_training(args, train_fast, style, content_source(args), args.ckpt_dir,
                         content_weight=args.content_weight, style_weight=args.style_weight,
                         tv_weight=args.tv_weight, content_layers=args.content_layers,
                         style_norm=args.style_norm, style_size=args.style_size,
                         periodic_weight=args.periodic_weight)


def train_sanet_command(args):
    from ..sanet_train import train_sanet

    return run_training(args, train_sanet, content_source(args), args.style_dir, args.ckpt_dir,
                        content_weight=args.content_weight, style_weight=args.style_weight,
                        identity1_weight=args.identity1_weight, identity2_weight=args.identity2_weight,
                        periodic_weight=args.periodic_weight, upsample=args.upsample,
                        decoder_from=args.decoder_from)


def progress_message(args):
    return None if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
