"""The notifier loop: ``jobstore.notify.deliver`` every ``notify_poll_seconds``, in a thread of the
reaper's process (``worker.reaper``), so webhooks go out wherever the reaper runs.

A thread of its own because a receiver may take up to ``notify_timeout_seconds`` per attempt: the
reaper's passes and the presence beats must not wait for it. The reaper process is a companion,
never the worker's main process, so no pool child is forked while this thread holds a lock.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from jobstore.notify.deliver import DeliveryReport, deliver
from jobstore.settings import Settings
from worker.database import get_engine
from worker.passes import logged_pass

log = logging.getLogger(__name__)


class NotifierLoop:
    """Delivers the notification outbox every ``notify_poll_seconds`` until ``halt``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run_forever, name="notifier", daemon=True)
        self._thread.start()

    def halt(self, timeout: float | None = None) -> None:
        self._halt.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run_forever(self) -> None:
        log.info("notifier started (every %.2fs)", self.settings.notify_poll_seconds)
        while not self._halt.is_set():
            self.run_once()
            self._halt.wait(self.settings.notify_poll_seconds)

    def run_once(self) -> DeliveryReport | None:
        """One pass; errors are logged (the next pass retries), never raised."""
        return logged_pass("notifier", self._pass)

    def _pass(self) -> DeliveryReport:
        return deliver(get_engine(self.settings), settings=self.settings, clock=lambda: datetime.now(UTC))
