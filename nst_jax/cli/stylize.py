"""``nst-jax stylize``: Gatys et al. on one picture, a folder of contents or a sweep of values."""

from __future__ import annotations

from ..config import as_dict, defaults
from ..errors import NSTError
from .common import (
    NO_DEFAULT,
    PRESERVE_COLOR_HELP,
    HelpFormatter,
    api_defaults,
    floats,
    image_arguments,
    many_arguments,
    names,
    positive_int,
    run_arguments,
    size_or_none,
    sweep_values,
    tile,
)
from .pictures import enable_cache, execute, gather

SWEEPS = ("content_weight", "style_weight", "tv_weight", "seed")  # options that take comma-separated values


NAME = "stylize"
HELP = "Gatys et al.: optimise an image's pixels"


def add_parser(sub) -> None:
    from .. import gatys
    from ..content import CONTENT_LOSSES
    from ..regions import MASK_MODES
    from ..solvers import SOLVERS, adam, lbfgs, lbfgsb
    from ..style import STYLE_LOSSES

    d = {**api_defaults(gatys.stylize), **defaults(gatys.StylizeConfig)}
    s = sub.add_parser(NAME, help=HELP,
                       formatter_class=HelpFormatter)
    image_arguments(s)
    s.add_argument("--size", type=size_or_none, default=d["size"],
                   help="longest side in px; 'none' keeps the content's own")
    s.add_argument("--iters", type=positive_int, default=d["iters"], help="iterations per scale")
    s.add_argument("--optimizer", choices=tuple(SOLVERS), default=d["optimizer"],
                   help="lbfgs: L-BFGS as neural-style runs it; adam; lbfgsb: jaxopt's L-BFGS-B, pixels "
                        "boxed to [0, 1] (default: the content or style loss's: adam for swd, remd and "
                        "self-similarity, else lbfgs)")
    s.add_argument("--learning-rate", type=float, default=d["learning_rate"],
                   help=f"Adam only (default: {api_defaults(adam)['learning_rate']})")
    s.add_argument("--init", default=d["init"], help="content | noise | style | PATH")
    sweep = "; comma-separated values: a sweep, one picture each"
    for name in ("content", "style", "tv"):
        s.add_argument(f"--{name}-weight", type=sweep_values(float, minimum=0.0), default=d[f"{name}_weight"],
                       help=f"weight of the {name} term (at least 0{sweep})")
    s.add_argument("--pool", choices=("max", "avg"), default=d["pool"], help="VGG-19's pooling")
    s.add_argument("--content-layers", type=names, default=d["content_layers"],
                   help="comma-separated VGG-19 layer names (default: the content loss's: relu4_2 for "
                        "feature, relu2_1,relu3_1,relu4_1 for self-similarity)")
    s.add_argument("--style-layers", type=names, default=d["style_layers"],
                   help="comma-separated VGG-19 layer names")
    s.add_argument("--style-layer-weights", type=floats, default=d["style_layer_weights"],
                   help="comma-separated, one per style layer (default: equal)")
    s.add_argument("--style-loss", choices=tuple(STYLE_LOSSES), default=d["style_loss"],
                   help="the style representation: gram (Gatys et al.), moments (channel means and standard "
                        "deviations), mmd-poly / mmd-rbf (Li et al. 2017's kernels), swd (sliced "
                        "Wasserstein, Heitz et al. 2021), histogram (Risser et al. 2017), remd (STROTSS's "
                        "relaxed EMD)")
    s.add_argument("--content-loss", choices=tuple(CONTENT_LOSSES), default=d["content_loss"],
                   help="the content representation: feature (Gatys et al.'s feature distance) or "
                        "self-similarity (STROTSS's: which parts of the photo resemble which)")
    s.add_argument("--style-blend", type=floats, default=d["style_blend"],
                   help="comma-separated, one per style image (default: equal)")
    s.add_argument("--mask", dest="masks", action="append", metavar="FILE",
                   help="spatial control (Gatys et al. 2017): a grey mask, the first style inside (white) "
                        "and the second outside; or one --mask per style, each style in its own; resized to "
                        "the content, grey levels blend at the borders (gram, moments, mmd-poly)")
    s.add_argument("--style-mask", dest="style_masks", action="append", metavar="FILE",
                   help="with --mask: one per style image, the part of it its region takes, or none for "
                        "all of it")
    s.add_argument("--mask-mode", choices=MASK_MODES, default=d["mask_mode"],
                   help="how a mask reaches each VGG-19 layer: simple (each position its cell's mean), "
                        "inside (positions that see only the region), all (those that see any of it)")
    s.add_argument("--style-scale", type=float, default=d["style_scale"],
                   help="style images' longest side, as a multiple of each scale's --size")
    s.add_argument("--preserve-color", choices=("luminance", "histogram"), default=d["preserve_color"],
                   help=PRESERVE_COLOR_HELP)
    s.add_argument("--scales", type=positive_int, default=d["scales"],
                   help="coarse-to-fine: number of sizes, halving down from --size")
    s.add_argument("--seed", type=sweep_values(int), default=d["seed"], help=f"for --init noise{sweep}")
    many_arguments(s, "; a batch's pictures differ from single runs by L-BFGS's amplified rounding")
    s.add_argument("--save-every", type=positive_int, default=d["save_every"],
                   help="also save OUT_<iteration> every K iterations")
    s.add_argument("--history", type=positive_int, default=d["history"],
                   help=f"L-BFGS memory: pairs kept, each 24 bytes per pixel (default: "
                        f"{api_defaults(lbfgs)['history']}; lbfgsb: {api_defaults(lbfgsb)['history']})")
    s.add_argument("--history-dtype", choices=("float32", "bfloat16"), default=d["history_dtype"],
                   help="how L-BFGS stores its pairs: bfloat16 halves their memory (12 instead of 24 bytes "
                        "per pixel a pair; products still in float32) (default: float32)")
    s.add_argument("--dtype", choices=gatys.DTYPES, default=d["dtype"],
                   help="VGG-19's activations and convolutions: bfloat16 is mixed precision, bfloat16 "
                        "products summed in float32 (the loss, its targets and the solver stay float32)")
    s.add_argument("--devices", default=d["devices"],
                   help="N or all: split the image (and the L-BFGS history) by rows across N devices; the "
                        "same result, about 1/N of the memory on each (default: one device)" + NO_DEFAULT)
    s.add_argument("--tile", type=tile, default=d["tile"],
                   help="auto: evaluate the objective a band of rows at a time when the whole image would "
                        "not fit in memory (the same loss and gradient); none; or a band height in px")
    s.add_argument("--remat", action="store_true",
                   help="recompute VGG activations in the backward pass (jax.checkpoint)")
    s.add_argument("--weights", default=d["weights"],
                   help="VGG-19 weights file (.h5, .npz, .pth); default: fetched ImageNet weights")
    run_arguments(s)
    s.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from .. import gatys
    from .. import image as im

    sweep = {k: getattr(args, k) for k in SWEEPS if isinstance(getattr(args, k), list)}
    if args.save_every and (sweep or Path(args.content).expanduser().is_dir()):
        raise NSTError("--save-every follows one picture; not with a folder of contents or a sweep")
    if "seed" in sweep and args.init != "noise":
        raise NSTError("several --seed values need --init noise (the seed only draws the starting noise)")
    init_file = None if args.init in ("content", "noise", "style") else args.init
    fixed = {k: getattr(args, k) for k in SWEEPS if k not in sweep}
    mask_files, style_mask_files = args.masks or [], args.style_masks or []
    read = [init_file, *mask_files, *(f for f in style_mask_files if f != "none")]
    inputs = gather(args, [args.content], sweep, inputs=read, skip_existing=args.skip_existing)
    init = args.init if init_file is None else im.load_image(init_file)
    masks = [im.load_image(f) for f in mask_files]
    masks = None if not masks else masks[0] if len(masks) == 1 else masks
    style_masks = [None if f == "none" else im.load_image(f) for f in style_mask_files] or None
    own = ("init", "masks", "style_masks") + SWEEPS
    conf = gatys.StylizeConfig(**{name: getattr(args, name) for name in defaults(gatys.StylizeConfig)
                                  if name not in own}, init=init, masks=masks, style_masks=style_masks,
                               **fixed)
    _say_resized(args, conf.masks, inputs)
    enable_cache(args)

    def stylize(images, callback):
        pictures = [gatys.Picture(image, inputs.styles, entry.values)
                    for (entry, _), image in zip(inputs.todo, images, strict=True)]
        return gatys.stylize_many(pictures, conf, batch=args.batch, weights=args.weights, callback=callback)

    arrays = ("init", "masks", "style_masks")  # the files are named in the report instead
    options = {**{k: v for k, v in as_dict(conf).items() if k not in arrays}, **sweep,
               "weights": args.weights}
    extra = {"method": "gatys", "styles": [str(s) for s in args.styles], "swept": list(sweep),
             "options": options, "init": args.init, "mask_files": mask_files,
             "style_mask_files": style_mask_files}
    return execute(args, inputs, stylize, extra, grid=tuple(sweep))


def _say_resized(args, masks, inputs) -> None:
    """One line when the masks' size differs from a content's: they are resized to each."""
    if masks is None or getattr(args, "quiet", False):
        return
    shape = (masks if not isinstance(masks, tuple) else masks[0]).shape
    if any(image.shape[:2] != shape for _, image in inputs.todo):
        print(f"nst-jax: the mask is {shape[1]}x{shape[0]} px: resized to each content's size")
