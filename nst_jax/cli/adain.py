"""``nst-jax adain``: AdaIN (Huang & Belongie 2017) on one picture or a folder of contents."""

from __future__ import annotations

from ..config import defaults
from .common import (
    HelpFormatter,
    alpha,
    api_defaults,
    arbitrary_style_arguments,
    image_arguments,
    many_arguments,
    run_arguments,
    size_arguments,
)
from .pictures import enable_cache, execute, gather

NAME = "adain"
HELP = "AdaIN (Huang & Belongie 2017): any style in one forward pass"


def add_parser(sub) -> None:
    from .. import adain

    d = {**api_defaults(adain.stylize), **defaults(adain.StylizeConfig)}
    a = sub.add_parser(NAME, help=HELP,
                       formatter_class=HelpFormatter)
    image_arguments(a)
    a.add_argument("--alpha", type=alpha, default=d["alpha"],
                   help="content-style trade-off: 0 = content, 1 = full style")
    arbitrary_style_arguments(a, d)
    a.add_argument("--decoder", default=d["decoder"], help="decoder .npz (default: the shipped one)")
    many_arguments(a)
    size_arguments(a, d)
    a.add_argument("--weights", default=d["weights"], help="VGG-19 weights file (default: fetched)")
    run_arguments(a)
    a.set_defaults(func=run)


def run(args) -> int:
    from .. import adain
    from .. import image as im

    enable_cache(args)  # before the networks load: their shapes are kept with the programs
    decoder = adain.load_decoder(args.decoder)  # every input is checked before any work or output
    inputs = gather(args, [args.content], {}, inputs=[args.mask, args.decoder],
                    skip_existing=args.skip_existing)
    mask = im.load_image(args.mask).mean(axis=-1) if args.mask else None
    conf = adain.StylizeConfig(**{name: getattr(args, name) for name in defaults(adain.StylizeConfig)})

    def stylize(images, callback):
        return adain.stylize_many(images, inputs.styles, conf, mask=mask, decoder=decoder,
                                  weights=args.weights, batch=args.batch, callback=callback)

    extra = {"method": "adain", "styles": [str(s) for s in args.styles], "mask_file": args.mask,
             "decoder": args.decoder or "shipped", "weights": args.weights}
    return execute(args, inputs, stylize, extra)
