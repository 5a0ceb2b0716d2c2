"""The CLI's side of the connection: the server URL and key from flags or the environment, a
``Client`` (``ocec_jobs.client``) per command, and its errors turned into one-line ``ClientError``s
with their exit codes.

Problem details (RFC 9457) from the server become ``<status> <title>: <detail>`` plus the fields a
422 names; a server that does not answer becomes "cannot reach …" (exit 3), a refused key exit 4.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jobstore.text import visible
from ocec_jobs.cli.client.exitcodes import ClientError, Exit

if TYPE_CHECKING:
    from ocec_jobs.client import Client, OcecJobsError

URL_ENV, KEY_ENV = "OCEC_URL", "OCEC_API_KEY"
DEFAULT_URL = "http://127.0.0.1:8000"
# A 429 for too many wrong keys from this address is about the key, not the request (docs/security.md).
FAILED_KEYS = "urn:ocec-jobs:problem:too-many-failed-keys"


@dataclass(frozen=True)
class Target:
    url: str
    key: str | None
    timeout: float


def target_of(args: argparse.Namespace) -> Target:
    url = (args.url or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")
    key = args.key or os.environ.get(KEY_ENV) or None
    return Target(url=url, key=key, timeout=args.timeout)


def connect(target: Target) -> Client:
    from ocec_jobs.client import Client  # here, not at import: `ocec-jobs --help` stays fast

    return Client(target.url, target.key, timeout=target.timeout)


def cli_error(exc: OcecJobsError, *, has_key: bool) -> ClientError:
    """The exit code and one line (escapes shown, not obeyed) of a client error."""
    from ocec_jobs.client import ApiError, UnreachableError

    if isinstance(exc, UnreachableError):
        return ClientError(Exit.UNREACHABLE, f"{exc}: is it running? Set --url or {URL_ENV}")
    if not isinstance(exc, ApiError):
        return ClientError(Exit.SERVER_ERROR, visible(str(exc)))
    message = visible(exc.message)
    if exc.status == 401:
        hint = "check --key /" if has_key else "pass --key or set"
        return ClientError(Exit.AUTH, f"{message} ({hint} {KEY_ENV})")
    if exc.status == 403 or exc.type == FAILED_KEYS:
        return ClientError(Exit.AUTH, message)
    return ClientError(Exit.SERVER_ERROR if exc.status >= 500 else Exit.REFUSED, message)
