"""``nst-jax weights``: fetch, verify and cache the VGG-19 weights, or port a weights file."""

from __future__ import annotations

import sys

from .common import Parser

NAME = "weights"
HELP = "fetch or convert VGG-19 weights"


def add_parser(sub) -> None:
    w = sub.add_parser(NAME, help=HELP)
    wsub = w.add_subparsers(dest="weights_command", required=True, parser_class=Parser)
    f = wsub.add_parser("fetch", help="fetch, verify and cache the ImageNet VGG-19 weights; "
                                      "prints the cached path")
    f.add_argument("--force", action="store_true", help="fetch again even if cached")
    f.set_defaults(func=fetch)
    c = wsub.add_parser("convert", help="port a Keras .h5 / torchvision .pth / .npz to our .npz")
    c.add_argument("src")
    c.add_argument("dst")
    c.set_defaults(func=convert)


def fetch(args):
    from .. import weights

    path = weights.fetch(force=args.force, log=lambda m: print(m, file=sys.stderr))
    print(path)


def convert(args):
    from .. import weights

    print(weights.convert(args.src, args.dst))
