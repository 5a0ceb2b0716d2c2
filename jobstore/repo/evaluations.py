"""Evaluations: a model scored on a dataset by a worker, queued like a job (``POST /evaluations``).

States move by the table ``TRANSITIONS``: queued → running (a worker claimed it: exactly one claim
wins, so a message delivered twice runs once) → succeeded (the report is stored) or failed (with a
reason a user can act on). A queued evaluation may also fail before it runs (a worker refused it).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
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
    EvaluationState.RUNNING: frozenset({EvaluationState.SUCCEEDED, EvaluationState.FAILED}),
    EvaluationState.SUCCEEDED: frozenset(),
    EvaluationState.FAILED: frozenset(),
}
EVALUATIONS_DIR = "evaluations"  # under the runs root: <runs_root>/evaluations/<id>; job ids are hex


class EvaluationTransitionError(JobStoreError):
    """The evaluation is not in a state that allows the change (a stale or duplicate worker)."""

    code = "illegal-transition"


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


def _move(
    session: Session, evaluation_id: str, to: EvaluationState, *, now: datetime | None = None
) -> Evaluation:
    """The locked row moved to ``to``; ``EvaluationTransitionError`` when its state forbids that."""
    evaluation = session.get(Evaluation, evaluation_id, with_for_update=True, populate_existing=True)
    if evaluation is None:
        raise EvaluationTransitionError(f"evaluation {evaluation_id} does not exist")
    current = EvaluationState(evaluation.state)
    if to not in TRANSITIONS[current]:
        raise EvaluationTransitionError(f"evaluation {evaluation_id} is {current}, cannot become {to}")
    evaluation.state = to.value
    if to == EvaluationState.RUNNING:
        evaluation.started_at = now_or(now)
    else:
        evaluation.finished_at = now_or(now)
    session.add(evaluation)
    return evaluation


def claim_evaluation(
    session: Session, *, evaluation_id: str, worker: str, now: datetime | None = None
) -> Evaluation | None:
    """queued → running for ``worker``; None when it is not queued (a duplicate or stale message)."""
    try:
        evaluation = _move(session, evaluation_id, EvaluationState.RUNNING, now=now)
    except EvaluationTransitionError:
        return None
    evaluation.worker = worker[:255]
    session.flush()
    return evaluation


def record_progress(session: Session, *, evaluation_id: str, done: int, total: int) -> None:
    """Images scored so far, while running (a later state keeps what it has)."""
    evaluation = session.get(Evaluation, evaluation_id, with_for_update=True, populate_existing=True)
    if evaluation is not None and evaluation.state == EvaluationState.RUNNING:
        evaluation.progress = {"done": int(done), "total": int(total)}
        session.add(evaluation)


def finish_evaluation(
    session: Session,
    *,
    evaluation_id: str,
    report: dict[str, Any] | None = None,
    reason: str = "",
    now: datetime | None = None,
) -> Evaluation:
    """running → succeeded with ``report``, or (no report) → failed with ``reason``."""
    to = EvaluationState.SUCCEEDED if report is not None else EvaluationState.FAILED
    evaluation = _move(session, evaluation_id, to, now=now)
    evaluation.state_reason = clip(reason)
    if report is not None:
        evaluation.report = report
        samples = int((report.get("data") or {}).get("samples") or 0)
        evaluation.progress = {"done": samples, "total": samples}
    session.flush()
    return evaluation
