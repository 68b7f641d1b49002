"""The ``pedjax`` command: one module per command, each with ``add_parser(subparsers)`` and a
handler that returns an exit code. Nothing in the library imports this package.

Every failure prints one line ``pedjax COMMAND: error: …`` on stderr and exits 2; ``--debug`` shows
the traceback instead. Errors a person can act on (``ValueError``, ``OSError`` and its kinds —
unreadable or unwritable paths, a folder held by another run —, ``KeyError`` from a lookup,
``EOFError`` of a truncated file) print their message; anything else prints its type and message
and asks for ``--debug``. Ctrl-C prints one line and exits 130.

Process settings (:func:`pedjax.cli._common.configure_process`) are made here, for this process
only: float64 on, the XLA:CPU flag that avoids a scheduler stall, and the persistent compilation
cache. Importing the library makes none of them.

Every command takes ``--precision auto|float64|float32`` (default ``auto``: float64 on CPU, float32
on GPU and TPU; :mod:`pedjax._precision`): the command runs inside ``pedjax.precision(...)``, and
the resolved value is printed in its headers and stored in its JSON results.
"""
from __future__ import annotations

import argparse
import sys

from . import _common

#: the command modules, in ``pedjax --help`` order
_COMMANDS = ("demo", "score", "evaluate", "plot", "zoo", "finetune", "meta", "recommend", "info")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(prog="pedjax", description="Rank a model zoo by transferability (PED + metrics).")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("--version", action="version", version=f"pedjax {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in _COMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    for p in sub.choices.values():
        _common.add_precision_option(p)
    return parser


def _version() -> str:
    """The installed distribution's version (package metadata), else the package's own."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pedjax")
    except PackageNotFoundError:  # run from a source tree that is not installed
        from .. import __version__

        return __version__


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    _common.configure_process()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        from .._precision import precision

        with precision(args.precision):
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"pedjax {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        print(f"pedjax {args.command}: error: {error_line(exc)}", file=sys.stderr)
        return 2


def error_line(exc: BaseException) -> str:
    """One line for ``exc``: the message of an error a person can act on, else type and message."""
    if isinstance(exc, KeyError) and exc.args:
        msg = str(exc.args[0])
    elif isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        msg = f"{exc.filename}: {exc.strerror}"  # e.g. "[Errno 13] Permission denied: 'x'" → "x: Permission denied"
    elif isinstance(exc, (ValueError, OSError, EOFError)):
        msg = str(exc) or type(exc).__name__
    else:
        msg = f"{type(exc).__name__}: {exc} (unexpected; rerun with --debug for the traceback)"
    return " ".join(msg.split())  # one line


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
