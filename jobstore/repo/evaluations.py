"""Evaluations: a model scored on a dataset by a worker, queued like a job (``POST /evaluations``).

States move by the table ``TRANSITIONS``: queued → running (a worker claimed it: exactly one claim
wins, so a message delivered twice runs once) → succeeded (the report is stored) or failed (with a
reason a user can act on). A queued evaluation may also fail before it runs (a worker refused it).
A running one whose worker was lost goes back to queued as the next ``attempt`` (the reaper:
``jobstore.evaluation_reaper``), or fails once its retries are used up.

Fencing, as for jobs: ``attempt`` is the token. The claim takes the lease for the attempt it finds;
every later write of that run (lease renewal, progress, the finish) names the attempt and is refused
(``EvaluationFencedError``) once the reaper has handed the evaluation to a newer attempt.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlmodel import Session, and_, col, or_, select

from jobstore.errors import JobStoreError
from jobstore.models import Evaluation
from jobstore.repo._base import clip, now_or
from jobstore.repo.jobs import decode_cursor


class EvaluationState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class ModelRoot(StrEnum):
    """Which configured root an evaluation's ``model_path`` is relative to."""

    MODEL = "model"  # a file under the model root (uploads land there too)
    RUNS = "runs"  # a job's artifact under the runs root


TRANSITIONS: dict[EvaluationState, frozenset[EvaluationState]] = {
    EvaluationState.QUEUED: frozenset({EvaluationState.RUNNING, EvaluationState.FAILED}),
    EvaluationState.RUNNING: frozenset(
        {EvaluationState.SUCCEEDED, EvaluationState.FAILED, EvaluationState.QUEUED}  # queued: worker lost
    ),
    EvaluationState.SUCCEEDED: frozenset(),
    EvaluationState.FAILED: frozenset(),
}
EVALUATIONS_DIR = "evaluations"  # under the runs root: <runs_root>/evaluations/<id>; job ids are hex


class EvaluationTransitionError(JobStoreError):
    """The evaluation is not in a state that allows the change (a stale or duplicate worker)."""

    code = "illegal-transition"


class EvaluationFencedError(EvaluationTransitionError):
    """This run no longer owns the evaluation: the reaper re-queued it as a newer attempt, or it ended."""

    code = "fenced-out"


@dataclass(frozen=True)
class NewEvaluation:
    name: str
    owner: str
    source: dict[str, Any]
    model_root: ModelRoot
    model_path: str
    data_path: str
    split: str
    threshold_rule: str
    threshold_target: float | None
    top_k: int


@dataclass(frozen=True)
class EvaluationPage:
    items: list[Evaluation]
    next_cursor: str | None


def out_dir_of(evaluation_id: str) -> str:
    return f"{EVALUATIONS_DIR}/{evaluation_id}"


def create_evaluation(session: Session, *, new: NewEvaluation, now: datetime | None = None) -> Evaluation:
    evaluation = Evaluation(
        name=new.name, owner=new.owner, source=new.source, model_root=new.model_root.value,
        model_path=new.model_path, data_path=new.data_path, split=new.split,
        threshold_rule=new.threshold_rule, threshold_target=new.threshold_target, top_k=new.top_k,
        created_at=now_or(now),
    )  # fmt: skip
    evaluation.out_dir = out_dir_of(evaluation.id)
    evaluation.dispatched_at, evaluation.dispatch_count = evaluation.created_at, 1  # sent after commit
    session.add(evaluation)
    session.flush()
    return evaluation


def get_evaluation(session: Session, *, evaluation_id: str) -> Evaluation | None:
    return session.get(Evaluation, evaluation_id)


def list_evaluations(session: Session, *, limit: int, cursor: str | None = None) -> EvaluationPage:
    """Newest first, keyset-paginated on ``(created_at, id)`` like the jobs and uploads lists."""
    if limit < 1:
        raise ValueError("limit must be >= 1")
    query = select(Evaluation)
    if cursor:
        created_at, evaluation_id = decode_cursor(cursor)
        query = query.where(
            or_(
                col(Evaluation.created_at) < created_at,
                and_(col(Evaluation.created_at) == created_at, col(Evaluation.id) < evaluation_id),
            )
        )
    order = (col(Evaluation.created_at).desc(), col(Evaluation.id).desc())
    rows = list(session.exec(query.order_by(*order).limit(limit + 1)))
    items = rows[:limit]
    return EvaluationPage(items, _cursor(items[-1]) if len(rows) > limit else None)


def _cursor(evaluation: Evaluation) -> str:
    raw = json.dumps([evaluation.created_at.isoformat(), evaluation.id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _locked(session: Session, evaluation_id: str) -> Evaluation:
    """The row, locked for this transaction and freshly read."""
    evaluation = session.get(Evaluation, evaluation_id, with_for_update=True, populate_existing=True)
    if evaluation is None:
        raise EvaluationTransitionError(f"evaluation {evaluation_id} does not exist")
    return evaluation


def _move(
    session: Session, evaluation_id: str, to: EvaluationState, *, now: datetime | None = None
) -> Evaluation:
    """The locked row moved to ``to``; ``EvaluationTransitionError`` when its state forbids that."""
    evaluation = _locked(session, evaluation_id)
    current = EvaluationState(evaluation.state)
    if to not in TRANSITIONS[current]:
        raise EvaluationTransitionError(f"evaluation {evaluation_id} is {current}, cannot become {to}")
    evaluation.state = to.value
    if to == EvaluationState.RUNNING:
        evaluation.started_at = now_or(now)
    elif to == EvaluationState.QUEUED:
        evaluation.started_at = None
    else:
        evaluation.finished_at = now_or(now)
    session.add(evaluation)
    return evaluation


def claim_evaluation(
    session: Session,
    *,
    evaluation_id: str,
    worker: str,
    lease_seconds: float,
    pid: int | None = None,
    now: datetime | None = None,
) -> Evaluation | None:
    """queued → running for ``worker`` (process ``pid``) with a lease on its current attempt; None when
    it is not queued (a duplicate or stale message): the row lock lets exactly one claim through."""
    now = now_or(now)
    try:
        evaluation = _move(session, evaluation_id, EvaluationState.RUNNING, now=now)
    except EvaluationTransitionError:
        return None
    evaluation.worker, evaluation.pid = clip(worker, 255), pid
    evaluation.heartbeat_at, evaluation.lease_expires_at = now, now + timedelta(seconds=lease_seconds)
    session.flush()
    return evaluation


def _fenced(session: Session, evaluation_id: str, attempt: int) -> Evaluation:
    """The locked row, running for ``attempt``; ``EvaluationFencedError`` otherwise."""
    evaluation = session.get(Evaluation, evaluation_id, with_for_update=True, populate_existing=True)
    if evaluation is None or evaluation.state != EvaluationState.RUNNING or evaluation.attempt != attempt:
        now = f"{evaluation.state} at attempt {evaluation.attempt}" if evaluation else "gone"
        raise EvaluationFencedError(f"evaluation {evaluation_id} attempt {attempt} fenced out (now {now})")
    return evaluation


def renew_lease(
    session: Session, *, evaluation_id: str, attempt: int, lease_seconds: float, now: datetime | None = None
) -> Evaluation:
    """Fenced: this run is alive; its lease now lasts ``lease_seconds`` more."""
    now = now_or(now)
    evaluation = _fenced(session, evaluation_id, attempt)
    evaluation.heartbeat_at, evaluation.lease_expires_at = now, now + timedelta(seconds=lease_seconds)
    session.add(evaluation)
    return evaluation


def record_progress(
    session: Session,
    *,
    evaluation_id: str,
    attempt: int,
    done: int,
    total: int,
    lease_seconds: float,
    now: datetime | None = None,
) -> None:
    """Fenced: images scored so far; the write renews the lease too."""
    evaluation = renew_lease(
        session, evaluation_id=evaluation_id, attempt=attempt, lease_seconds=lease_seconds, now=now
    )
    evaluation.progress = {"done": int(done), "total": int(total)}


def finish_evaluation(
    session: Session,
    *,
    evaluation_id: str,
    attempt: int,
    report: dict[str, Any] | None = None,
    reason: str = "",
    now: datetime | None = None,
) -> Evaluation:
    """Fenced: running → succeeded with ``report``, or (no report) → failed with ``reason``."""
    to = EvaluationState.SUCCEEDED if report is not None else EvaluationState.FAILED
    _fenced(session, evaluation_id, attempt)
    evaluation = _move(session, evaluation_id, to, now=now)
    evaluation.state_reason = clip(reason)
    if report is not None:
        evaluation.report = report
        samples = int((report.get("data") or {}).get("samples") or 0)
        evaluation.progress = {"done": samples, "total": samples}
    session.flush()
    return evaluation


def requeue_lost(
    session: Session, *, evaluation_id: str, why: str, budget: int, now: datetime | None = None
) -> Evaluation:
    """A running evaluation lost its worker (``why``): noted in ``lost``, then re-queued as the next
    attempt (state queued: send it) or, with ``budget`` re-queues used, failed naming every lost worker."""
    now = now_or(now)
    current = _locked(session, evaluation_id)
    lost = [
        *current.lost,
        {"attempt": current.attempt, "worker": current.worker, "pid": current.pid, "why": why},
    ]
    retries = len(lost) - 1  # re-queues already made
    to = EvaluationState.FAILED if retries >= budget else EvaluationState.QUEUED
    evaluation = _move(session, evaluation_id, to, now=now)
    evaluation.lost, evaluation.lease_expires_at = lost, None
    if to == EvaluationState.FAILED:
        names = ", ".join(f"{x['worker']} (pid {x['pid']}, attempt {x['attempt']})" for x in lost)
        reason = f"lost its worker {len(lost)} times, retry budget {budget} used up: {names}; last: {why}"
    else:
        evaluation.attempt += 1
        evaluation.worker, evaluation.pid, evaluation.heartbeat_at = "", None, None
        evaluation.dispatched_at, evaluation.dispatch_count = now, 1
        reason = f"re-queued as attempt {evaluation.attempt} (retry {retries + 1} of {budget}): {why}"
    evaluation.state_reason = clip(reason)
    session.add(evaluation)
    return evaluation


def mark_redispatched(session: Session, evaluation: Evaluation, *, now: datetime | None = None) -> None:
    """The locked, queued ``evaluation``'s message is sent again (its claim refuses a duplicate)."""
    now = now_or(now)
    evaluation.dispatched_at, evaluation.dispatch_count = now, evaluation.dispatch_count + 1
    session.add(evaluation)
