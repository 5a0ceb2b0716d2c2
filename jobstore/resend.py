"""When the reaper sends a queued job's task message again: only when the message is plausibly lost.

A message is a turn in the queue (``jobstore.repo.leases``): whichever message a worker takes, it
claims the job first in line. So what a broker can lose is a turn, and a lost turn shows in one way:
the queue stops moving while a worker waits with nothing to take. Waiting alone proves nothing: in a
backlog every job waits longer than any fixed window, and re-sending each one (the old rule) flooded
the broker with duplicates (2,014 for 1,000 jobs, docs/performance.md). With ``w`` =
``redispatch_after_seconds``, one pass at ``now`` decides (``to_resend``):

1. **Moving** (some claim, or some attempt's end, within ``w``): nothing is re-sent. Every claim used
   up a message; if a turn was lost, the remaining turns run out, the queue stalls and rule 2 sends
   it, at most ``w`` (plus a reaper interval) after the queue drained.
2. **Stalled, and a live worker has lived ``w`` and runs nothing**: it would have taken any message
   the broker held within ``w``, so the broker holds none: every queued job's message is lost (Redis
   restarted with them in it) and each one whose backoff is due is sent again.
3. **Stalled, and no worker is live** (none beats its presence): a lost message cannot be told from
   one waiting for a worker, so each job whose backoff is due is sent again (the API died between its
   commit and its send while no worker ran: when one comes up, every job has its message).
4. **Stalled, and every live worker is busy** (or too young to tell): the queue waits for the workers,
   not for a message; only the job first in line is sent again, when its backoff is due: a bounded
   safety net (one message per backoff step) for a worker whose presence does not beat.

The backoff (``backoff_due``) is per job: ``w`` after its dispatch, then doubling with each re-send
up to ``redispatch_max_seconds``. A job never dispatched (no ``dispatched_at``) is always sent.
Duplicates stay harmless: ``claim`` lets exactly one delivery through.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Waiting:
    """A queued job, as the rule sees it."""

    job_id: str
    dispatched_at: datetime | None
    dispatch_count: int


@dataclass(frozen=True)
class QueueView:
    """What the job table and the workers' presence say about the queue as a whole."""

    last_activity: datetime | None  # the latest claim or attempt end of any job (None: never)
    live_workers: int  # workers beating their presence
    idle_workers: int  # ... live for the whole window and running no job
    head: str | None = None  # the queued job first in line (priority, then time queued)


@dataclass(frozen=True)
class ResendRule:
    after: timedelta  # redispatch_after_seconds: the window
    cap: timedelta  # redispatch_max_seconds: the longest wait between re-sends of one job

    def backoff_due(self, dispatched_at: datetime | None, dispatch_count: int, now: datetime) -> bool:
        if dispatched_at is None:
            return True
        doublings = min(max(dispatch_count - 1, 0), 32)  # 2**32 windows is past any cap; no overflow
        wait = min(self.after * (1 << doublings), self.cap)
        return dispatched_at + wait <= now

    def stalled(self, view: QueueView, now: datetime) -> bool:
        return view.last_activity is None or view.last_activity <= now - self.after

    def to_resend(self, waiting: Sequence[Waiting], view: QueueView, now: datetime) -> list[str]:
        """The jobs of ``waiting`` (those dispatched at least a window ago) to send again; see the
        module docstring."""
        due = [w.job_id for w in waiting if self.backoff_due(w.dispatched_at, w.dispatch_count, now)]
        never = {w.job_id for w in waiting if w.dispatched_at is None}  # all due: nothing is in flight
        if not self.stalled(view, now):
            return [j for j in due if j in never]  # rule 1
        if view.idle_workers or not view.live_workers:
            return due  # rules 2 and 3
        return [j for j in due if j == view.head or j in never]  # rule 4
