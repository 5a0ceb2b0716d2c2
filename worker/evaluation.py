"""One evaluation run: claim (queued → running) → confine its paths → the engine's
``evaluate_to_dir`` → store the report (succeeded) or a reason (failed).

The message carries only the evaluation's id; the database says what to score. Paths are checked
again here (``jobstore.paths.within``): the row is shared and links may change after submission. The
engine loads the model with ``weights_only`` like every engine load. ``OCEC_EVALUATOR`` names
another ``module:function`` with ``evaluate_to_dir``'s signature (the service tests plug a fast
torch-free fake in, as ``OCEC_ENGINE`` does for training).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Engine

from jobstore.repo import evaluations
from jobstore.repo.evaluations import EvaluationState, ModelRoot
from jobstore.settings import Settings
from worker.database import get_engine
from worker.dbwrite import write_retrying
from worker.engine_config import JobConfigError, confined
from worker.engine_entry import resolve_engine
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
    """Run one evaluation to its end; returns the state it ended in ("skipped": not claimable)."""
    db = get_engine(settings)
    claimed = write_retrying(
        db,
        lambda s: evaluations.claim_evaluation(s, evaluation_id=evaluation_id, worker=worker),
        give_up_after=DB_OUTAGE_SECONDS,
        what="claim evaluation",
    )
    if claimed is None:
        log.info("evaluation %s: not queued (duplicate or stale message); nothing done", evaluation_id)
        return "skipped"
    try:
        paths = _paths(settings, claimed.model_root, claimed.model_path, claimed.data_path, claimed.out_dir)
        evaluate = cast(Evaluator, resolve_engine(evaluator_ref()))
        report = evaluate(
            paths[0], paths[1], paths[2],
            split=claimed.split, threshold_rule=claimed.threshold_rule, target=claimed.threshold_target,
            top_k=claimed.top_k, progress=_progress(db, evaluation_id),
        )  # fmt: skip
    except Exception as exc:
        log.exception("evaluation %s failed", evaluation_id)
        return _finish(db, evaluation_id, reason=failure_reason(exc, worker))
    return _finish(db, evaluation_id, report=dict(report))


def _paths(settings: Settings, root: str, model: str, data: str, out: str) -> tuple[Path, Path, Path]:
    model_root = settings.model_root if root == ModelRoot.MODEL else settings.runs_root
    out_dir = confined(settings.runs_root, out, "output folder", must_exist=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = confined(model_root, model, "model", must_exist=True)
    data_path = confined(settings.data_root, data, "data", must_exist=True)
    if not model_path.is_file():
        raise JobConfigError(f"model {model!r} is not a regular file")
    return model_path, data_path, out_dir


def _progress(db: Engine, evaluation_id: str) -> Callable[[int, int], None]:
    """A throttled ``progress(done, total)`` for the engine; a failed write is only logged."""
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] < PROGRESS_EVERY_SECONDS and done < total:
            return
        last[0] = now
        try:
            write_retrying(
                db,
                lambda s: evaluations.record_progress(s, evaluation_id=evaluation_id, done=done, total=total),
                give_up_after=1.0,
                what="evaluation progress",
            )
        except Exception:
            log.warning("evaluation %s: progress not recorded", evaluation_id, exc_info=True)

    return progress


def _finish(db: Engine, evaluation_id: str, *, report: dict[str, Any] | None = None, reason: str = "") -> str:
    write_retrying(
        db,
        lambda s: evaluations.finish_evaluation(s, evaluation_id=evaluation_id, report=report, reason=reason),
        give_up_after=DB_OUTAGE_SECONDS,
        what="finish evaluation",
    )
    state = EvaluationState.SUCCEEDED if report is not None else EvaluationState.FAILED
    log.info("evaluation %s %s%s", evaluation_id, state.value, f": {reason}" if reason else "")
    return state.value
