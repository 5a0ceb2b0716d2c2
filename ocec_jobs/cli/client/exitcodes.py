"""Exit codes of the client commands (docs/cli.md): scripts branch on these, not on messages."""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    OK = 0  # done; for follow (and --follow): the job succeeded
    JOB_FAILED = 1  # the followed job ended failed
    USAGE = 2  # bad flags or spec file (argparse uses 2 too)
    UNREACHABLE = 3  # no answer from the server: down, wrong URL, network, timeout
    AUTH = 4  # 401 / 403: no key, a wrong or revoked key, a role too low; 429 too many wrong keys
    REFUSED = 5  # the server refused the request: 404, 409, 413, 422, 429 (its detail is printed)
    SERVER_ERROR = 6  # 5xx or an answer that is not what the API documents
    JOB_CANCELLED = 7  # the followed job was cancelled
    JOB_WAITING = 8  # the followed job is paused or awaiting a gate decision: a human must act
    INTERRUPTED = 130  # Ctrl-C


# Final job states (and the states a follow stops at) -> exit code.
JOB_STATE_EXITS: dict[str, Exit] = {
    "succeeded": Exit.OK,
    "failed": Exit.JOB_FAILED,
    "cancelled": Exit.JOB_CANCELLED,
    "paused": Exit.JOB_WAITING,
    "awaiting_decision": Exit.JOB_WAITING,
}
FINAL_STATES = frozenset({"succeeded", "failed", "cancelled"})
WAITING_STATES = frozenset({"paused", "awaiting_decision"})


class ClientError(Exception):
    """A one-line message for the user and the exit code that goes with it."""

    def __init__(self, code: Exit, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
