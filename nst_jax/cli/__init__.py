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


def build_parser(argv=None) -> Parser:
    """The command's parser.  Given the command line, only the subcommand it names is built whole (the
    others by name and help: each subcommand reads its defaults from its method's module, and importing them
    all costs every command 0.2 s); without one, all are built."""
    p = Parser(prog="nst-jax", description="Neural style transfer in JAX.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    words = [w for w in (argv or []) if not w.startswith("-")][:1]
    chosen = [c for c in SUBCOMMANDS if [c.NAME] == words]
    for command in SUBCOMMANDS:
        if argv is None or not chosen or command in chosen:
            command.add_parser(sub)
        else:
            sub.add_parser(command.NAME, help=command.HELP)
    return p


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
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
