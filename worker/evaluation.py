"""One evaluation run: claim (queued → running) → confine its paths → the engine's
``evaluate_to_dir`` → store the report (succeeded) or a reason (failed).

The message carries only the evaluation's id; the database says what to score. Paths are checked
again here (``jobstore.paths.within``): the row is shared and links may change after submission. The
engine loads the model with ``weights_only`` like every engine load. ``OCEC_EVALUATOR`` names
another ``module:function`` with ``evaluate_to_dir``'s signature (the service tests plug a fast
torch-free fake in, as ``OCEC_ENGINE`` does for training).

Not lost: the claim takes a lease on the evaluation's current ``attempt`` (with this process's pid);
a heartbeat thread renews it every ``heartbeat_seconds`` and each progress write renews it too. If the
process dies, the lease runs out and the reaper re-queues the evaluation
(``jobstore.evaluation_reaper``). A run the reaper has given away is fenced out: its progress
callback raises (the engine stops at its next batch) and it writes nothing more.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Engine
from sqlmodel import Session

from jobstore.repo import evaluations
from jobstore.repo.evaluations import EvaluationFencedError, EvaluationState, ModelRoot
from jobstore.settings import Settings
from worker.database import get_engine
from worker.dbwrite import write_retrying
from worker.engine_config import JobConfigError, confined
from worker.engine_entry import resolve_engine
from worker.heartbeat import Heartbeat, LeaseLostError
from worker.runner import failure_reason

log = logging.getLogger(__name__)

EVALUATOR_ENV = "OCEC_EVALUATOR"
DEFAULT_EVALUATOR = "ocec_engine.evaluation:evaluate_to_dir"
PROGRESS_EVERY_SECONDS = 1.0  # progress is a nicety: at most one small write a second
DB_OUTAGE_SECONDS = 60.0

Evaluator = Callable[..., dict[str, Any]]


def evaluator_ref() -> str:
    return os.environ.get(EVALUATOR_ENV, "").strip() or DEFAULT_EVALUATOR


def run_evaluation(evaluation_id: str, *, settings: Settings, worker: str) -> str:
    """Run one evaluation to its end; returns the state it ended in ("skipped": not claimable,
    "fenced": the reaper gave it to a newer attempt meanwhile)."""
    db = get_engine(settings)
    claimed = write_retrying(
        db,
        lambda s: evaluations.claim_evaluation(
            s,
            evaluation_id=evaluation_id,
            worker=worker,
            pid=os.getpid(),
            lease_seconds=settings.lease_seconds,
        ),
        give_up_after=DB_OUTAGE_SECONDS,
        what="claim evaluation",
    )
    if claimed is None:
        log.info("evaluation %s: not queued (duplicate or stale message); nothing done", evaluation_id)
        return "skipped"
    run = _Run(db, settings, evaluation_id, claimed.attempt)
    heartbeat = _heartbeat(run, settings)
    heartbeat.start()
    try:
        paths = _paths(settings, claimed.model_root, claimed.model_path, claimed.data_path, claimed.out_dir)
        evaluate = cast(Evaluator, resolve_engine(evaluator_ref()))
        report = evaluate(
            paths[0], paths[1], paths[2],
            split=claimed.split, threshold_rule=claimed.threshold_rule, target=claimed.threshold_target,
            top_k=claimed.top_k, progress=_progress(run, heartbeat),
        )  # fmt: skip
    except Exception as exc:
        if heartbeat.fenced:
            return _fenced(evaluation_id, heartbeat.fenced)
        log.exception("evaluation %s failed", evaluation_id)
        return _finish(run, reason=failure_reason(exc, worker))
    finally:
        heartbeat.stop()
    return _finish(run, report=dict(report))


@dataclass(frozen=True)
class _Run:
    """The claimed run: every write it makes names its attempt (the fence)."""

    db: Engine
    settings: Settings
    evaluation_id: str
    attempt: int

    def renew(self) -> list[object]:
        self.write(
            lambda s: evaluations.renew_lease(
                s,
                evaluation_id=self.evaluation_id,
                attempt=self.attempt,
                lease_seconds=self.settings.lease_seconds,
            ),
            "evaluation lease",
        )
        return []

    def write(self, work: Callable[[Session], object], what: str, give_up_after: float = 1.0) -> None:
        try:
            write_retrying(self.db, work, give_up_after=give_up_after, what=what)
        except EvaluationFencedError as exc:
            raise LeaseLostError(str(exc)) from exc


def _heartbeat(run: _Run, settings: Settings) -> Heartbeat[object]:
    """The lease renewal thread; an evaluation takes no operator commands."""
    return Heartbeat(
        run.renew, settings.heartbeat_seconds,
        is_cancel=lambda _: False, cancel_deadline=float("inf"), on_overdue=lambda: None,
    )  # fmt: skip


def _fenced(evaluation_id: str, why: str) -> str:
    log.warning("evaluation %s: %s; this run stops without writing", evaluation_id, why)
    return "fenced"


def _paths(settings: Settings, root: str, model: str, data: str, out: str) -> tuple[Path, Path, Path]:
    model_root = settings.model_root if root == ModelRoot.MODEL else settings.runs_root
    out_dir = confined(settings.runs_root, out, "output folder", must_exist=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = confined(model_root, model, "model", must_exist=True)
    data_path = confined(settings.data_root, data, "data", must_exist=True)
    if not model_path.is_file():
        raise JobConfigError(f"model {model!r} is not a regular file")
    return model_path, data_path, out_dir


def _progress(run: _Run, heartbeat: Heartbeat[object]) -> Callable[[int, int], None]:
    """A throttled ``progress(done, total)`` for the engine; each write renews the lease. A failed
    write is only logged; a fenced-out run raises, so the engine stops at its next batch."""
    last = [0.0]

    def progress(done: int, total: int) -> None:
        if heartbeat.fenced:
            raise LeaseLostError(heartbeat.fenced)
        now = time.monotonic()
        if now - last[0] < PROGRESS_EVERY_SECONDS and done < total:
            return
        last[0] = now
        try:
            run.write(
                lambda s: evaluations.record_progress(
                    s, evaluation_id=run.evaluation_id, attempt=run.attempt, done=done, total=total,
                    lease_seconds=run.settings.lease_seconds,
                ),
                "evaluation progress",
            )  # fmt: skip
        except LeaseLostError as exc:
            heartbeat.fenced = str(exc)
            raise
        except Exception:
            log.warning("evaluation %s: progress not recorded", run.evaluation_id, exc_info=True)

    return progress


def _finish(run: _Run, *, report: dict[str, Any] | None = None, reason: str = "") -> str:
    try:
        run.write(
            lambda s: evaluations.finish_evaluation(
                s, evaluation_id=run.evaluation_id, attempt=run.attempt, report=report, reason=reason
            ),
            "finish evaluation",
            give_up_after=DB_OUTAGE_SECONDS,
        )
    except LeaseLostError as exc:
        return _fenced(run.evaluation_id, str(exc))
    state = EvaluationState.SUCCEEDED if report is not None else EvaluationState.FAILED
    log.info("evaluation %s %s%s", run.evaluation_id, state.value, f": {reason}" if reason else "")
    return state.value
