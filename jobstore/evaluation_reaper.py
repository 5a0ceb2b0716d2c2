"""The evaluation pass of the reaper: no evaluation is lost to a dead worker or a lost message.

Run right after the jobs' pass (``jobstore.reaper.reap``) by ``worker.reaper``, with the same
settings, so evaluations get the guarantees jobs have:

1. **Lost workers.** A running evaluation whose lease ran out (its pool child was killed, its host
   vanished; the run renews the lease every ``heartbeat_seconds`` and with each progress write), or
   whose worker node is gone (its presence marked stopped, or restarted since the claim), is
   re-queued as its next ``attempt`` and sent, with ``state_reason`` saying why. Past
   ``infra_retry_budget`` re-queues it fails, naming every lost worker. A run that was only slow
   and comes back is fenced out: its later writes name the old attempt and are refused.
2. **Lost messages.** A queued evaluation not claimed ``redispatch_after_seconds`` after its message
   (the broker was down when ``POST /evaluations`` sent it, or Redis lost it) is sent again, the
   wait doubling up to ``redispatch_max_seconds``. A duplicate is harmless: the claim (queued →
   running under the row lock) lets exactly one delivery through.

Each evaluation is handled in its own short transaction that re-checks the condition under the row
lock, so several reapers may run at once. Messages are sent after the commit; jobstore never imports
Celery: the caller passes ``send(evaluation_id)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import partial

from sqlmodel import Session, col, select

from jobstore.db import TransactionFactory
from jobstore.models import Evaluation, WorkerPresence
from jobstore.reaper import BATCH, guarded_step, redispatch_due
from jobstore.repo import evaluations as repo
from jobstore.repo.evaluations import EvaluationState
from jobstore.repo.workers import PresenceRole
from jobstore.settings import Settings

log = logging.getLogger(__name__)

SendEvaluation = Callable[[str], object]  # publishes one run_evaluation(evaluation_id) message


@dataclass
class EvaluationReapReport:
    requeued: int = 0  # running ones whose worker was lost, queued again
    failed: int = 0  # ... past the retry budget
    redispatched: int = 0  # queued ones whose message was sent again
    dispatch_errors: int = 0  # sends that raised (it stays queued; sent again on a later pass)
    errors: int = 0  # evaluations whose handling raised (logged; retried next pass)
    sent: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {f"evaluations {k}": v for k, v in asdict(self).items() if isinstance(v, int)}


def reap_evaluations(
    session_factory: TransactionFactory, *, now: datetime, settings: Settings, send: SendEvaluation
) -> EvaluationReapReport:
    """One pass over lost evaluation runs and unclaimed messages; see the module docstring."""
    run = _Pass(session_factory, now, settings, EvaluationReapReport())
    with session_factory() as session:
        running = _ids(session, EvaluationState.RUNNING)
        queued = _ids(session, EvaluationState.QUEUED)
    for evaluation_id in running:
        run.guarded(partial(run.reap_lost, evaluation_id))
    for evaluation_id in queued:
        run.guarded(partial(run.redispatch, evaluation_id))
    for evaluation_id in run.report.sent:
        try:
            send(evaluation_id)
        except Exception:  # broker down: it stays queued and is sent again on a later pass
            run.report.dispatch_errors += 1
            log.exception("dispatch of evaluation %s failed", evaluation_id)
    return run.report


def _ids(session: Session, state: EvaluationState) -> list[str]:
    query = select(Evaluation.id).where(Evaluation.state == state.value).order_by(col(Evaluation.created_at))
    return list(session.exec(query.limit(BATCH)).all())


@dataclass
class _Pass:
    sessions: TransactionFactory
    now: datetime
    settings: Settings
    report: EvaluationReapReport

    def guarded(self, step: Callable[[], None]) -> None:
        guarded_step(self.report, step, "evaluation reaper step failed")

    def reap_lost(self, evaluation_id: str) -> None:
        with self.sessions() as session:
            evaluation = _locked_in(session, evaluation_id, EvaluationState.RUNNING)
            why = lost_reason(session, evaluation, self.now) if evaluation else None
            if why is None:
                return  # alive, or finished or handled by another reaper since the scan
            budget = self.settings.infra_retry_budget
            moved = repo.requeue_lost(
                session, evaluation_id=evaluation_id, why=why, budget=budget, now=self.now
            )
            queued = moved.state == EvaluationState.QUEUED
        if queued:
            self.report.requeued += 1
            self.report.sent.append(evaluation_id)
        else:
            self.report.failed += 1

    def redispatch(self, evaluation_id: str) -> None:
        with self.sessions() as session:
            evaluation = _locked_in(session, evaluation_id, EvaluationState.QUEUED)
            if evaluation is None:
                return  # claimed since the scan
            if not redispatch_due(
                self.settings, evaluation.dispatched_at, evaluation.dispatch_count, self.now
            ):
                return
            repo.mark_redispatched(session, evaluation, now=self.now)
        self.report.redispatched += 1
        self.report.sent.append(evaluation_id)


def _locked_in(session: Session, evaluation_id: str, state: EvaluationState) -> Evaluation | None:
    """The row, locked and freshly read, if it is still in ``state``."""
    evaluation = session.get(Evaluation, evaluation_id, with_for_update=True, populate_existing=True)
    return evaluation if evaluation is not None and evaluation.state == state else None


def lost_reason(session: Session, evaluation: Evaluation, now: datetime) -> str | None:
    """Why the run of ``evaluation`` is lost, or None while it may still be alive. Its pool child dies
    with the node's main process, so a node stopped or restarted since the claim runs it no more."""
    who = f"worker {evaluation.worker or '?'} (pid {evaluation.pid}, attempt {evaluation.attempt})"
    expiry = evaluation.lease_expires_at
    if expiry is None or expiry < now:
        beat = evaluation.heartbeat_at.isoformat() if evaluation.heartbeat_at else "never"
        at = expiry.isoformat() if expiry else "never set"
        return f"{who} lost: lease expired at {at}, last heartbeat at {beat}"
    node = session.get(WorkerPresence, evaluation.worker) if evaluation.worker else None
    if node is None or node.role != PresenceRole.WORKER or evaluation.started_at is None:
        return None  # no word on the node: the lease decides
    if node.stopped_at is not None and node.stopped_at >= evaluation.started_at:
        return f"{who} lost: its node stopped at {node.stopped_at.isoformat()} ({node.reason or 'no reason'})"
    if node.started_at > evaluation.started_at:
        return f"{who} lost: its node restarted at {node.started_at.isoformat()}"
    return None
