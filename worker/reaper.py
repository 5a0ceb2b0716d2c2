"""The reaper loop: ``jobstore.reaper.reap`` every ``reaper_interval_seconds``, dispatching via Celery.

It runs as a daemon thread in the Celery worker's parent process (started on ``worker_ready``; set
``OCEC_WORKER_REAPER=0`` to leave it to someone else) or standalone with ``python -m worker.reaper``.
Any number of reapers may run at once: every change is a compare-and-set under the job's row lock.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from datetime import UTC, datetime

from celery import Celery

from jobstore.db import transaction_factory
from jobstore.reaper import ReapReport, reap
from jobstore.settings import Settings, get_settings
from worker.database import get_engine
from worker.dispatch import make_dispatch

log = logging.getLogger(__name__)

REAPER_ENV = "OCEC_WORKER_REAPER"


def reaper_enabled() -> bool:
    return os.environ.get(REAPER_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


class ReaperLoop:
    def __init__(self, app: Celery, settings: Settings) -> None:
        self.settings = settings
        self._dispatch = make_dispatch(app, settings.queue)
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self.run_forever, name="ocec-reaper", daemon=True)

    def start(self) -> None:
        self._thread.start()
        log.info("reaper loop started (every %.1fs)", self.settings.reaper_interval_seconds)

    def stop(self) -> None:
        self._halt.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def run_forever(self) -> None:
        while not self._halt.is_set():
            self.run_once()
            self._halt.wait(self.settings.reaper_interval_seconds)

    def run_once(self) -> ReapReport | None:
        """One pass; errors are logged (the next pass retries), never raised."""
        try:
            sessions = transaction_factory(get_engine(self.settings))
            report = reap(sessions, now=datetime.now(UTC), settings=self.settings, dispatch=self._dispatch)
        except Exception:
            log.exception("reaper pass failed")
            return None
        changed = {k: v for k, v in report.counts().items() if v}
        if changed:
            log.info("reaper: %s", changed)
        return report


def main() -> None:
    """``python -m worker.reaper``: the loop alone, in the foreground."""
    from worker.app import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    loop = ReaperLoop(create_app(settings), settings)
    with contextlib.suppress(KeyboardInterrupt):
        loop.run_forever()


if __name__ == "__main__":
    main()
