"""The ``pedjax`` command: one module per command, each with ``add_parser(subparsers)`` and a
handler that returns an exit code. Nothing in the library imports this package.

Errors a person can act on (``ValueError``, ``OSError`` and its kinds, ``KeyError`` from a lookup)
print one line ``pedjax COMMAND: error: …`` and exit 2; ``--debug`` shows the traceback.

Process settings (:func:`pedjax.cli._common.configure_process`) are made here, for this process
only: float64 on, the XLA:CPU flag that avoids a scheduler stall, and the persistent compilation
cache. Importing the library makes none of them.
"""
from __future__ import annotations

import argparse
import sys

from . import _common

#: the command modules, in ``pedjax --help`` order
_COMMANDS = ("demo", "score", "evaluate", "plot", "zoo", "finetune", "meta", "info")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(prog="pedjax", description="Rank a model zoo by transferability (PED + metrics).")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in _COMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    _common.configure_process()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, OSError, KeyError) as exc:
        if args.debug:
            raise
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"pedjax {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
