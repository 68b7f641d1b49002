"""The ``pedjax`` command.

Subcommands live with the code they drive: a module listed in ``_PLUGINS`` that defines
``add_cli(subparsers)`` adds its own subcommand(s); each handler returns an exit code.
Errors a person can act on (``ValueError``, missing files) print one line and exit 2; ``--debug``
shows the traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys

#: modules that contribute subcommands through ``add_cli(subparsers)``
_PLUGINS = ("pedjax.demo", "pedjax.data", "pedjax.finetune", "pedjax.results", "pedjax.evaluate", "pedjax.plots", "pedjax.meta", "pedjax.modelzoo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pedjax", description="Rank a model zoo by transferability (PED + metrics).")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    p = sub.add_parser("metrics", help="list the registered transferability metrics")
    p.set_defaults(func=_cmd_metrics)
    for name in _PLUGINS:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        if hasattr(mod, "add_cli"):
            mod.add_cli(sub)
    return parser


def _cmd_metrics(args) -> int:
    from . import metrics

    for name in metrics.names():
        m = metrics.REGISTRY[name]
        print(f"{name:10s} input={m.input}")
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        if args.debug:
            raise
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"pedjax {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
