"""One pass of a background service (the reaper, the notifier), logged the same way for each."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol, TypeVar

log = logging.getLogger(__name__)


class Report(Protocol):
    def counts(self) -> dict[str, int]: ...


R = TypeVar("R", bound=Report)


def logged_pass(name: str, one_pass: Callable[[], R]) -> R | None:
    """Run ``one_pass``; log what it changed. Errors are logged (the next pass retries), never raised."""
    try:
        report = one_pass()
    except Exception:
        log.exception("%s pass failed", name)
        return None
    changed = {k: v for k, v in report.counts().items() if v}
    if changed:
        log.info("%s: %s", name, changed)
    return report
