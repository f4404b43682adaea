"""The ``nst-jax`` command: a thin shell over the Python API, one module per subcommand (its parser and its
run), the shared steps in :mod:`.common` (argument types, progress, reports) and :mod:`.pictures` (inputs,
outputs, saving, for every picture command).

Every option's default is read from the API, so each default lives once.  User errors print one line on
stderr and exit 1 (2 for bad command-line syntax, 130 for Ctrl-C); outputs are written atomically.
"""

from __future__ import annotations

import sys

from ..errors import NSTError
from . import adain, fast, sanet, stylize, train, video, weights
from .common import OOM_HINT, Parser, is_oom, start_distributed

SUBCOMMANDS = (weights, stylize, adain, sanet, fast, video, train)


def build_parser() -> Parser:
    p = Parser(prog="nst-jax", description="Neural style transfer in JAX.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command in SUBCOMMANDS:
        command.add_parser(sub)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        start_distributed(args)
        rc = args.func(args)
    except NSTError as e:
        print(f"nst-jax: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("nst-jax: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print(f"nst-jax: error: {OOM_HINT}", file=sys.stderr)
        return 1
    except Exception as e:  # XLA's runtime errors carry no stable type across jax versions
        if is_oom(e):
            print(f"nst-jax: error: {OOM_HINT}", file=sys.stderr)
            return 1
        raise
    return rc or 0


__all__ = ["build_parser", "main"]
