"""One attempt of one job: claim → build the config → heartbeat → ``engine.train`` → finish.

The Celery task is a thin shim over ``run_attempt``; everything here also runs without Celery.

- **Claim** (``queued → running`` for exactly this attempt). A duplicate or stale delivery gets
  nothing and returns without writing anything.
- **Config**: the stored spec and resume point become a ``TrainConfig`` with paths confined to the
  configured roots; output under ``<runs_root>/<job_id>``.
- **Run** with ``DbHooks`` and the heartbeat thread (lease renewal, commands, self-fencing).
- **Finish** with the engine's outcome: completed/stopped → succeeded (best checkpoint and ONNX
  recorded), paused, cancelled, awaiting_decision (with the gate), preempted → re-queued and
  re-dispatched. An ``EngineError`` (the user's data, pretrain or checkpoint) or any other exception
  → failed with a short reason a user can act on; the traceback goes to the worker log.
"""

from __future__ import annotations

import errno
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from jobstore.errors import FencedOutError
from jobstore.kinds import CheckpointKind, CommandKind
from jobstore.repo import checkpoints, commands, leases
from jobstore.repo.commands import CommandView
from jobstore.settings import Settings
from jobstore.states import AttemptOutcome
from jobstore.tasknames import Dispatch
from ocec_engine.errors import EngineError
from ocec_engine.plain import plain
from worker import preemption
from worker.command_probe import CommandProbe
from worker.database import get_engine
from worker.dbwrite import write_retrying
from worker.engine_config import (
    JobConfigError,
    RunPlan,
    build_train_config,
    plan_run,
    relative_to_runs,
    run_dir,
)
from worker.engine_entry import EngineEntryError, EngineFn, resolve_engine
from worker.heartbeat import Heartbeat, LeaseLostError
from worker.hooks import (
    DB_OUTAGE_SECONDS,
    AttemptFenced,
    AttemptRef,
    DbHooks,
    checkpoint_row,
    with_tensorboard,
)

log = logging.getLogger(__name__)

CANCEL_DEADLINE_ENV = "OCEC_CANCEL_DEADLINE_SECONDS"
DEFAULT_CANCEL_DEADLINE = 300.0
EXIT_CANCEL_OVERDUE = 79  # the process ended itself: a cancel was not honoured in time


class RunStatus(StrEnum):
    """What ``run_attempt`` did (the Celery task's return value, for the log)."""

    SKIPPED = "skipped"  # not claimable: duplicate or stale message; nothing written
    REQUEUED_UNCLAIMED = "requeued_unclaimed"  # shutting down before the claim: message sent again
    FINISHED = "finished"  # the attempt ended and the job moved on
    FENCED = "fenced"  # the attempt lost the job while running; nothing more written


@dataclass(frozen=True)
class Identity:
    worker: str  # Celery node name, e.g. gpu0@host
    pid: int
    gpu: str | None  # CUDA_VISIBLE_DEVICES of this process; None on a CPU worker


def current_identity(worker: str) -> Identity:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return Identity(worker, os.getpid(), visible if visible else None)


def run_attempt(
    job_id: str,
    attempt: int,
    *,
    settings: Settings,
    dispatch: Dispatch,
    identity: Identity,
    engine: EngineFn | None = None,
) -> RunStatus:
    """Run attempt ``attempt`` of ``job_id`` to its end (see the module docstring)."""
    if preemption.preempt_reason():  # shutting down before we even started: hand the message back
        _send(dispatch, job_id, attempt)
        return RunStatus.REQUEUED_UNCLAIMED
    db = get_engine(settings)
    ref = AttemptRef(db, settings, job_id, attempt, identity.worker)
    claim = write_retrying(db, lambda s: _claim(s, ref, identity), give_up_after=60, what="claim")
    if claim is None:
        log.info(
            "job %s attempt %d: not claimable (duplicate or stale message); nothing done", job_id, attempt
        )
        return RunStatus.SKIPPED
    log.info("job %s attempt %d claimed by %s (pid %d)", job_id, attempt, identity.worker, identity.pid)
    return _Attempt(ref, claim.job, dispatch, engine).run()


def _claim(session: Any, ref: AttemptRef, identity: Identity) -> leases.Claim | None:
    return leases.claim(
        session, job_id=ref.job_id, attempt=ref.attempt, worker=identity.worker, pid=identity.pid,
        gpu=identity.gpu, lease_seconds=ref.settings.lease_seconds, run_dir=ref.job_id,
    )  # fmt: skip


class _Attempt:
    def __init__(self, ref: AttemptRef, job: Any, dispatch: Dispatch, engine: EngineFn | None) -> None:
        self.ref = ref
        self.job = job
        self.dispatch = dispatch
        self.engine = engine
        self.heartbeat: Heartbeat[CommandView] = Heartbeat(
            self._beat,
            ref.settings.heartbeat_seconds,
            is_cancel=lambda c: c.kind == CommandKind.CANCEL,
            cancel_deadline=cancel_deadline(),
            on_overdue=self._end_overdue_cancel,
        )
        self.probe = CommandProbe(
            ref.db, ref.job_id, every=ref.settings.command_check_seconds, deliver=self.heartbeat.beat_once
        )

    def run(self) -> RunStatus:
        try:
            plan = plan_run(dict(self.job.spec), dict(self.job.resume_from), self.ref.job_id)
            config = build_train_config(plan, self.ref.job_id, self.ref.settings)
            train = self.engine or resolve_engine()
            run_dir(self.ref.settings, self.ref.job_id).mkdir(parents=True, exist_ok=True)
        except (JobConfigError, EngineEntryError, ImportError, OSError) as exc:
            log.exception("job %s: cannot start", self.ref.job_id)
            return self._finish(AttemptOutcome.FAILED, f"cannot start: {exc}")
        if plan.stop_at == 0:  # stopped at a gate read before any epoch: nothing to restore or export
            return self._finish(AttemptOutcome.STOPPED, stop_reason(plan.decision, None, 0, exported=False))
        hooks = DbHooks(
            self.ref,
            take_commands=self.heartbeat.take_commands,
            check_commands=self.probe,
            fenced_reason=lambda: self.heartbeat.fenced,
            preempt_reason=preemption.preempt_reason,
            resumed_by=plan.resumed_by,
            inherited_from=plan.inherited_from,
        )
        self.heartbeat.start()
        try:
            result = train(config, with_tensorboard(hooks, run_dir(self.ref.settings, self.ref.job_id)))
        except AttemptFenced as exc:
            log.warning("job %s attempt %d fenced out: %s", self.ref.job_id, self.ref.attempt, exc)
            return RunStatus.FENCED
        except Exception as exc:
            log.exception("job %s attempt %d failed", self.ref.job_id, self.ref.attempt)
            return self._finish(AttemptOutcome.FAILED, failure_reason(exc, self.ref.worker))
        finally:
            self.heartbeat.stop()
            self.probe.close()
        return self._finish_result(result, plan)

    # ---- the end of the attempt ------------------------------------------------------------------
    def _finish_result(self, result: Any, plan: RunPlan) -> RunStatus:
        outcome = AttemptOutcome(str(result.outcome))
        reason = str(result.reason)
        if outcome == AttemptOutcome.PREEMPTED:  # jobstore says "preempted: …" itself
            reason = reason.removeprefix("preempted: ")
        gate = plain(result.gate) if result.gate is not None else None
        onnx = self._record_onnx(result)
        if plan.stop_at is not None and outcome in (AttemptOutcome.COMPLETED, AttemptOutcome.STOPPED):
            outcome = AttemptOutcome.STOPPED  # the operator's stop, not the epoch budget
            reason = stop_reason(plan.decision, result.best_f1, result.best_epoch, exported=onnx is not None)
        return self._finish(
            outcome,
            reason,
            gate=gate,
            best_checkpoint=self._rel(result.best_checkpoint),
            last_checkpoint=self._rel(result.last_checkpoint),
            onnx_path=onnx,
        )

    def _record_onnx(self, result: Any) -> str | None:
        if not result.onnx_path or not Path(result.onnx_path).is_file():
            return None
        row = checkpoint_row(self.ref.settings, result.onnx_path, CheckpointKind.ONNX.value,
                             result.best_epoch, result.stage, result.best_f1)  # fmt: skip
        self._write(lambda s: checkpoints.record_checkpoint(s, **self._key(), row=row), "onnx record")
        return row.path

    def _finish(self, outcome: AttemptOutcome, reason: str, **recorded: Any) -> RunStatus:
        budget = self.ref.settings.preempt_budget  # bounds a preemption loop (see finish_attempt)

        def work(session: Any) -> leases.Finish:
            return leases.finish_attempt(
                session, **self._key(), outcome=outcome, reason=reason, preempt_budget=budget, **recorded
            )

        try:
            done = self._write(work, "finish")
        except FencedOutError as exc:
            log.warning("job %s attempt %d: finish refused: %s", self.ref.job_id, self.ref.attempt, exc)
            return RunStatus.FENCED
        log.info("job %s attempt %d ended %s: %s", self.ref.job_id, self.ref.attempt, outcome.value, reason)
        if done.dispatch is not None:
            _send(self.dispatch, *done.dispatch)
        return RunStatus.FINISHED

    def _end_overdue_cancel(self) -> None:
        """Heartbeat thread: the engine ignored a cancel past the deadline — record it, then exit."""
        reason = f"cancel not honoured within {cancel_deadline():.0f} s; the worker process ended itself"
        try:
            for view in self.heartbeat.cancels:
                self._mark_applied(view.id, reason)
            self._finish(AttemptOutcome.CANCELLED, reason)
        finally:
            log.error("job %s: %s", self.ref.job_id, reason)
            os._exit(EXIT_CANCEL_OVERDUE)

    def _mark_applied(self, command_id: str, reason: str) -> None:
        def work(session: Any) -> None:
            commands.mark_result(
                session,
                **self._key(),
                command_id=command_id,
                applied=True,
                reason=reason,
                epoch=self.job.epoch,
            )

        self._write(work, "cancel result")

    def _beat(self) -> list[CommandView]:
        beat = self._write(
            lambda s: leases.heartbeat(s, **self._key(), lease_seconds=self.ref.settings.lease_seconds),
            "heartbeat",
            give_up_after=0,
        )
        if beat.fenced_out:
            raise LeaseLostError(beat.reason)
        return list(beat.commands)

    def _write(self, work: Callable[[Any], Any], what: str, give_up_after: float = DB_OUTAGE_SECONDS) -> Any:
        return write_retrying(self.ref.db, work, give_up_after=give_up_after, what=what)

    def _key(self) -> dict[str, Any]:
        return {"job_id": self.ref.job_id, "attempt": self.ref.attempt}

    def _rel(self, path: str | None) -> str | None:
        return relative_to_runs(self.ref.settings, path) if path else None


def _send(dispatch: Dispatch, job_id: str, attempt: int) -> None:
    try:
        dispatch(job_id, attempt)
    except Exception:  # the reaper re-sends a queued job whose message never arrived
        log.exception("job %s: dispatch of attempt %d failed; the reaper will retry", job_id, attempt)


def failure_reason(exc: BaseException, worker: str) -> str:
    """A short reason a user can act on (the full traceback is in the worker log)."""
    if isinstance(exc, EngineError):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        where = f" writing {exc.filename}" if exc.filename else ""
        return f"disk full{where}: free space under the runs root, then resume the job"
    if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
        return f"out of memory ({_first_line(exc)}): lower batch_size, then resume the job"
    if isinstance(exc, FloatingPointError) or _mentions_nan(exc):
        return f"training diverged: {_first_line(exc)}; lower the lr or check the data, then resume"
    return f"{type(exc).__name__}: {_first_line(exc)} (internal error; see the log of worker {worker})"


def stop_reason(decision: dict[str, Any], best_f1: float | None, best_epoch: int, *, exported: bool) -> str:
    """The ``state_reason`` of a job an operator stopped at a failed gate."""
    f1, threshold = decision.get("f1"), decision.get("threshold")
    read = (
        f" (val F1 {f1:.4f} < {threshold:g} at epoch {decision.get('gate_epoch')})"
        if isinstance(f1, int | float) and isinstance(threshold, int | float)
        else ""
    )
    kept = (
        f"best model F1 {best_f1:.4f} (epoch {best_epoch}) exported to ONNX"
        if exported and best_f1 is not None
        else "no trained epoch, nothing to export"
    )
    why = decision.get("reason") or "no reason given"
    where = f"the stage-{decision.get('gate_stage')} gate"
    return f"stopped by {decision.get('actor')} at {where}{read}: {why}; {kept}"


def cancel_deadline() -> float:
    raw = os.environ.get(CANCEL_DEADLINE_ENV, "")
    try:
        return float(raw) if raw else DEFAULT_CANCEL_DEADLINE
    except ValueError:
        return DEFAULT_CANCEL_DEADLINE


_NAN = re.compile(r"\bnan\b|non-finite|not finite", re.IGNORECASE)


def _mentions_nan(exc: BaseException) -> bool:
    return bool(_NAN.search(str(exc)))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:500] if text else type(exc).__name__
