"""Flags every client command shares, and the wrapper that turns errors into one line + an exit code."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from ocec_jobs.cli.client.connection import KEY_ENV, cli_error
from ocec_jobs.cli.client.exitcodes import ClientError, Exit

Command = Callable[[argparse.Namespace], int]
DEFAULT_TIMEOUT = 30.0


def common_parser() -> argparse.ArgumentParser:
    """``--url``, ``--key``, ``--json``, ``--timeout``: the parent of every client subcommand."""
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("server")
    group.add_argument(
        "--url", default=None, help="server URL (default: $OCEC_URL, else http://127.0.0.1:8000)"
    )
    group.add_argument("--key", default=None, help="API key (default: $OCEC_API_KEY)")
    group.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds to wait for an answer (default 30)"
    )
    group.add_argument("--json", action="store_true", help="print JSON (the server's answer) for scripts")
    return parser


def guarded(command: Command) -> Command:
    """Run ``command``; a ``ClientError`` prints ``ocec-jobs: <message>`` on stderr, no traceback."""

    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except ClientError as exc:
            return _failed(exc)
        except BrokenPipeError:  # `ocec-jobs list | head`: the reader left; not an error of ours
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return int(Exit.OK)
        except Exception as exc:  # the client's errors; imported here so `--help` needs no httpx
            from ocec_jobs.client import OcecJobsError

            if not isinstance(exc, OcecJobsError):
                raise
            has_key = bool(getattr(args, "key", None) or os.environ.get(KEY_ENV))
            return _failed(cli_error(exc, has_key=has_key))
        except KeyboardInterrupt:
            print("ocec-jobs: interrupted", file=sys.stderr)
            return int(Exit.INTERRUPTED)

    return run


def _failed(exc: ClientError) -> int:
    print(f"ocec-jobs: {exc.message}", file=sys.stderr, flush=True)
    return int(exc.code)


def add(
    subparsers: Any, name: str, command: Command, help_text: str, parents: list[argparse.ArgumentParser]
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name, help=help_text, description=help_text, parents=parents
    )
    parser.set_defaults(handler=guarded(command))
    return parser


def usage(message: str) -> ClientError:
    return ClientError(Exit.USAGE, message)
