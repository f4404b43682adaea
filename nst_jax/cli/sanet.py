"""``nst-jax sanet``: SANet (Park & Lee 2019) on one picture or a folder of contents."""

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
    sweep_values,
)
from .pictures import enable_cache, execute, gather

NAME = "sanet"
HELP = ("SANet (Park & Lee 2019): any style, each part of the photo taking the style of the parts of the "
        "painting it resembles")


def add_parser(sub) -> None:
    from .. import sanet

    d = {**api_defaults(sanet.stylize), **defaults(sanet.StylizeConfig)}
    a = sub.add_parser(NAME, help=HELP,
                       formatter_class=HelpFormatter)
    image_arguments(a)
    a.add_argument("--alpha", type=sweep_values(alpha), default=d["alpha"],
                   help="content-style trade-off: 0 = the photo through the network, 1 = full style; "
                        "comma-separated values: a sweep, one picture each")
    arbitrary_style_arguments(a, d)
    a.add_argument("--model", default=d["model"], help="SANet .npz (default: the shipped one)")
    many_arguments(a)
    size_arguments(a, d)
    a.add_argument("--weights", default=d["weights"], help="VGG-19 weights file (default: fetched)")
    run_arguments(a)
    a.set_defaults(func=run)


def run(args) -> int:
    from .. import image as im
    from .. import sanet
    from ..vgg import vgg19_params

    enable_cache(args)  # before the networks load: their shapes are kept with the programs
    model = sanet.load_model(args.model)  # every input is checked before any work or output
    sweep = {"alpha": args.alpha} if isinstance(args.alpha, list) else {}
    inputs = gather(args, [args.content], sweep, inputs=[args.mask, args.model],
                    skip_existing=args.skip_existing)
    mask = im.load_image(args.mask).mean(axis=-1) if args.mask else None
    names = set(defaults(sanet.StylizeConfig)) - set(sweep)
    conf = sanet.StylizeConfig(**{name: getattr(args, name) for name in names})

    def stylize(images, callback):
        if not sweep:
            yield from sanet.stylize_many(images, inputs.styles, conf, mask=mask, model=model,
                                          weights=args.weights, batch=args.batch, callback=callback)
            return
        weights = vgg19_params(args.weights, upto=sanet.ENCODER_LAYERS)  # one network for the whole sweep
        for value in sweep["alpha"]:
            todo = [i for i, (entry, _) in enumerate(inputs.todo) if entry.values["alpha"] == value]
            if not todo:
                continue
            for r in sanet.stylize_many([images[i] for i in todo], inputs.styles, conf, mask=mask,
                                        model=model, weights=weights, batch=args.batch, callback=callback,
                                        alpha=value):
                yield r._replace(index=todo[r.index])

    extra = {"method": "sanet", "styles": [str(s) for s in args.styles], "mask_file": args.mask,
             "model": args.model or "shipped", "weights": args.weights, "swept": list(sweep)}
    return execute(args, inputs, stylize, extra, grid=tuple(sweep))
