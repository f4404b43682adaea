"""``nst-jax fast``: a trained feed-forward network (Johnson et al. 2016) on one picture, several or a
folder."""

from __future__ import annotations

import sys

from ..config import defaults
from ..errors import NSTError
from .common import (
    PRESERVE_COLOR_HELP,
    HelpFormatter,
    many_arguments,
    run_arguments,
    size_arguments,
    size_or_none,
    style_spec,
)
from .pictures import enable_cache, execute, gather

NAME = "fast"
HELP = "Johnson et al.: a trained per-style network, one forward pass"


def add_parser(sub) -> None:
    from .. import feedforward

    d = defaults(feedforward.StylizeConfig)
    ff = sub.add_parser(NAME, help=HELP,
                        formatter_class=HelpFormatter)
    ff.add_argument("contents", nargs="*", metavar="CONTENT", help="content images or folders of them")
    ff.add_argument("-o", "--output",
                    help="output image (one content) or folder (several, or a folder: one CONTENT.png each)")
    ff.add_argument("--model",
                    help="a shipped network's or style's name (see --list) or a .npz (default: "
                         f"{feedforward.DEFAULT_MODEL}; with --style, the shipped network that paints it)")
    ff.add_argument("--style", nargs="+", metavar="NAME[=WEIGHT]",
                    help="with a network of several styles: which one, or a blend of some (weights "
                         "normalised to sum 1), e.g. --style the_scream=0.7 shipwreck=0.3")
    ff.add_argument("--size", type=size_or_none, default=d["size"],
                    help="longest side in px; 'none' keeps the original")
    ff.add_argument("--preserve-color", choices=("luminance", "histogram"), default=d["preserve_color"],
                    help=PRESERVE_COLOR_HELP)
    size_arguments(ff, d)
    many_arguments(ff)
    ff.add_argument("--list", action="store_true", help="list the shipped networks and the styles they paint")
    run_arguments(ff)
    ff.set_defaults(func=run)


def list_models() -> int:
    from ..feedforward import load_model, model_styles, shipped_models, shipped_styles

    styles = shipped_styles()
    if not styles:
        print("no feed-forward models are shipped in this version; train one with `nst-jax train fast` and "
              "pass --model PATH", file=sys.stderr)
    for name, path in shipped_models().items():  # every network by its own name
        meta = load_model(path)[1]
        steps = meta.get("cumulative", {}).get("steps", meta.get("step", "?"))  # all runs that made it
        inside = model_styles(meta)
        kind = f"\tnetwork of {len(inside)} styles: {', '.join(inside)}" if inside else ""
        print(f"{name}\t{steps} steps\t{path}{kind}")
    for name, (path, inside) in styles.items():  # every style a network paints
        if inside:
            meta = load_model(path)[1]
            steps = meta.get("cumulative", {}).get("steps", meta.get("step", "?"))
            print(f"{name}\t{steps} steps\t{path}\tone of {len(model_styles(meta))} styles of one network")
    return 0


def run(args) -> int:
    from .. import feedforward

    if args.list:
        return list_models()
    if not args.contents:
        raise NSTError("give one or more content images (or --list)")
    if args.output is None:
        raise NSTError("give -o OUT (a file for one image, a folder for several)")
    conf = feedforward.StylizeConfig(**{name: getattr(args, name)
                                        for name in defaults(feedforward.StylizeConfig)})
    style = style_spec(args.style) if args.style else None
    model = args.model or feedforward.default_model(style)
    enable_cache(args)  # before the networks load: their shapes are kept with the programs
    params, meta = feedforward.load_model(model)  # every input is checked before any work or output
    feedforward.choose_style(params, meta, style)
    inputs = gather(args, args.contents, {}, inputs=[args.model], skip_existing=args.skip_existing)

    def stylize(images, callback):
        return feedforward.stylize_many(images, (params, meta), conf, style=style, batch=args.batch,
                                        callback=callback)

    extra = {"method": "fast", "model": str(model), "style": style}
    return execute(args, inputs, stylize, extra)
