"""``ocec-jobs <subcommand>``: an argparse dispatcher over the modules of this package.

Every module in ``ocec_jobs.cli`` that defines ``register(subparsers)`` contributes subcommands:
``register`` adds its parser(s) and sets ``handler`` — a function ``(args) -> exit code``. A new
subcommand is therefore a new module and nothing else; modules import heavy dependencies inside
their handlers so that ``ocec-jobs --help`` stays fast and works on an API-only install.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Callable, Sequence
from typing import Any

Handler = Callable[[argparse.Namespace], int]
SubParsers = Any  # argparse's _SubParsersAction is private; this is what register() receives

PACKAGE = "ocec_jobs.cli"
_NOT_COMMANDS = frozenset({"main"})


def command_modules() -> list[str]:
    """The modules of this package that may register subcommands, in name order."""
    package = importlib.import_module(PACKAGE)
    names = (m.name for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_"))
    return sorted(f"{PACKAGE}.{name}" for name in names if name not in _NOT_COMMANDS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ocec-jobs", description="REST training-job server for progressive OCEC fine-tuning."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="<command>")
    for name in command_modules():
        register = getattr(importlib.import_module(name), "register", None)
        if callable(register):
            register(subparsers)
    return parser


def subcommands() -> set[str]:
    """The subcommand names this installation offers (``up`` asks before spawning a worker)."""
    parser = build_parser()
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(actions[0].choices) if actions else set()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
