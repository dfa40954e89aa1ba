"""``oexec`` entry point. Each command module registers its own sub-command.

A command module exposes ``register(subparsers)``; the parser it adds sets
``func=<callable(args) -> int>``. Exit code: 0 success, non-zero typed failure.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

#: Modules that register sub-commands, in help order. A missing module is skipped so a
#: partial install (or a feature still being built) never breaks the whole CLI.
COMMAND_MODULES = (
    "oexec.cli.run",
    "oexec.sim.cli",
    "oexec.cli.demo",
    "oexec.cli.paper",
    "oexec.cli.client_cmds",
    "oexec.cli.account_cmds",
    "oexec.cli.trace",
    "oexec.cli.reconcile",
    "oexec.cli.bench",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="oexec", description="Order-execution daemon for crypto futures desks."
    )
    from oexec import __version__

    parser.add_argument("--version", action="version", version=f"oexec {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
