"""``DbHooks``: the engine's ``TrainingHooks`` written to the database, fenced by attempt.

Each hook commits its own short transaction before it returns, so an epoch's checkpoint records,
stage event and metrics row are in the database before the engine starts the next epoch. The one
exception saves commits, not safety: an epoch's epoch/last/best checkpoint records are held (their
size and sha256 taken at once) and committed in the transaction of that epoch's metrics row, the
hook the engine calls right after them — one commit per epoch instead of four, which matters when
epochs take a tenth of a second (``benchmarks/epoch_overhead.py``). Any other write commits the
held records first, so the database still sees the engine's order. Every
write carries the attempt number; once jobstore refuses one (``FencedOutError``) — or the heartbeat
learns the attempt lost the job — every later hook call raises ``AttemptFenced``, which unwinds the
engine without another write or checkpoint (a newer attempt owns the run directory now).

Commands reach the engine through ``poll_commands``: each poll first asks the database whether one
is pending (``check_commands``, a ``worker.command_probe.CommandProbe``: always at an epoch boundary,
rate-limited between batches) and has it handed over then, so a command lands at the next boundary
whatever the heartbeat period; the heartbeat thread delivers too. A shutdown request reaches the
engine through ``should_stop``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlmodel import Session

from jobstore.errors import FencedOutError
from jobstore.records import CheckpointRow, EpochRow, GateCheckRow, StageChange
from jobstore.repo import checkpoints, commands, leases, metrics, stages
from jobstore.repo.commands import CommandView
from jobstore.settings import Settings
from ocec_engine.hooks import Command, CommandKind, CompositeHooks, StageTrigger
from ocec_engine.tensorboard import open_tensorboard
from worker.dbwrite import write_retrying
from worker.engine_config import relative_to_runs

log = logging.getLogger(__name__)

T = TypeVar("T")

DB_OUTAGE_SECONDS = 600.0  # how long a hook waits for the database before the attempt fails
WITH_EPOCH_ROW = frozenset({"epoch", "last", "best"})  # records committed with the epoch's metrics row


class AttemptFenced(BaseException):
    """This attempt no longer owns its job: unwind the engine and write nothing more.

    A ``BaseException`` so that an engine's ``except Exception`` cleanup (e.g. checkpoint on error)
    does not run for it.
    """


@dataclass(frozen=True)
class AttemptRef:
    """Which attempt the hooks write for, and where."""

    db: Engine
    settings: Settings
    job_id: str
    attempt: int
    worker: str


class DbHooks:
    """The worker's ``TrainingHooks`` (see the module docstring)."""

    def __init__(
        self,
        ref: AttemptRef,
        *,
        take_commands: Callable[[], list[CommandView]],
        check_commands: Callable[[bool], None],
        fenced_reason: Callable[[], str | None],
        preempt_reason: Callable[[], str | None],
        resumed_by: tuple[str, str] | None = None,
        inherited_from: str | None = None,
    ) -> None:
        self.ref = ref
        self.resumed_by = resumed_by  # (actor, reason) of the operator's resume: named on its stage change
        self.inherited_from = inherited_from  # a fork's parent: its history rows are tagged as inherited
        self._take_commands = take_commands
        self._check_commands = check_commands
        self._at_boundary = True  # the next poll is at an epoch boundary (the start, or after an epoch)
        self._fenced_reason = fenced_reason
        self._preempt_reason = preempt_reason
        self._fenced: str | None = None
        self.restored_epoch = 0
        self._held: list[CheckpointRow] = []  # this epoch's records, committed with its metrics row

    # ---- TrainingHooks -------------------------------------------------------------------------
    def on_train_start(self, info: Any) -> None:
        """Confirm what was restored; re-record the restored history (fills rows a crash lost)."""
        self.restored_epoch = int(info.restored_epoch)
        self._at_boundary = True
        resumed = relative_to_runs(self.ref.settings, info.resumed_from) if info.resumed_from else None
        evidence = {
            "device": info.device,
            "amp": info.amp,
            "start_epoch": info.start_epoch,
            "epochs": info.epochs,
            "trainable_params": info.trainable_params,
            "total_params": info.total_params,
            "pretrain_report": info.pretrain_report,
            "initial_metrics": getattr(info, "initial_metrics", None),
            "notes": list(getattr(info, "notes", []) or []),
        }
        history = [row for row in info.history if int(row["epoch"]) <= info.restored_epoch]
        rows = [epoch_row(self._inherited(row)) for row in history]
        since = stage_since(history, int(info.stage), int(info.restored_epoch)) if resumed else None

        def work(session: Session) -> None:
            leases.record_restore(
                session, **self._key(), stage=info.stage, epoch=info.restored_epoch,
                batch=info.restored_batch, resumed_from=resumed, evidence=evidence, stage_since_epoch=since,
            )  # fmt: skip
            for row in rows:
                metrics.record_epoch(session, **self._key(), row=row)

        self._write(work, "restore confirmation")

    def on_epoch_end(self, epoch_metrics: Any) -> None:
        row = epoch_row(dataclasses.asdict(epoch_metrics))
        self._at_boundary = True
        held = self._held  # recorded by record_epoch itself, after its one fence

        def work(session: Session) -> None:
            metrics.record_epoch(session, **self._key(), row=row, checkpoints=held)

        self._write(work, f"epoch {row.epoch} metrics", carries_held=True)

    def on_gate_check(self, check: Any) -> None:
        row = record_of(GateCheckRow, dataclasses.asdict(check))
        self._write(lambda s: stages.record_gate_check(s, **self._key(), check=row), "gate check")

    def on_stage_change(self, event: Any) -> None:
        values = dataclasses.asdict(event)
        if str(values.get("trigger")) == StageTrigger.RESUME and self.resumed_by and not values.get("actor"):
            actor, why = self.resumed_by  # the stage the operator asked for with the resume / decision
            values["actor"] = actor
            values["reason"] = f"{values['reason']}; by {actor}" + (f": {why}" if why else "")
        change = record_of(StageChange, values)
        self._write(lambda s: stages.record_stage_change(s, **self._key(), change=change), "stage change")

    def on_checkpoint(self, info: Any) -> None:
        settings = self.ref.settings
        row = checkpoint_row(
            settings, info.path, str(info.kind), info.epoch, info.stage, info.val_f1, info.batch
        )
        if row.kind in WITH_EPOCH_ROW:
            self._held.append(row)
            return
        self._write(
            lambda s: checkpoints.record_checkpoint(s, **self._key(), row=row), f"checkpoint {row.path}"
        )

    def on_command_result(self, result: Any) -> None:
        def work(session: Session) -> None:
            commands.mark_result(
                session, **self._key(), command_id=result.command_id, applied=result.applied,
                reason=result.reason, epoch=result.epoch, evidence=dict(result.evidence),
            )  # fmt: skip

        self._write(work, f"command {result.command_id} result")

    def on_train_end(self, result: Any) -> None:
        self._check_fenced()  # the runner records the outcome with finish_attempt
        if self._held:
            self._write(lambda s: None, "checkpoint records")

    def on_batch_end(self, epoch: int, batch: int, batches: int, loss: float) -> None:
        self._check_fenced()

    def poll_commands(self) -> list[Any]:
        self._check_fenced()
        boundary, self._at_boundary = self._at_boundary, False
        self._check_commands(boundary)
        self._check_fenced()  # the hand-over may have learnt that the attempt lost the job
        return [engine_command(view) for view in self._take_commands()]

    def should_stop(self) -> str | None:
        self._check_fenced()
        return self._preempt_reason()

    def _inherited(self, row: dict[str, Any]) -> dict[str, Any]:
        """A fork's restored history row, marked as the parent's (copied for comparison)."""
        if self.inherited_from is None:
            return row
        return {**row, "extra": {**dict(row.get("extra") or {}), "inherited_from": self.inherited_from}}

    # ---- writing --------------------------------------------------------------------------------
    def _key(self) -> dict[str, Any]:
        return {"job_id": self.ref.job_id, "attempt": self.ref.attempt}

    def _check_fenced(self) -> None:
        reason = self._fenced or self._fenced_reason()
        if reason:
            self._fenced = reason
            raise AttemptFenced(reason)

    def _write(self, work: Callable[[Session], T], what: str, *, carries_held: bool = False) -> T:
        """``work`` in one retried transaction, after the held checkpoint records (the engine wrote
        them first) unless ``work`` records them itself (``carries_held``)."""
        self._check_fenced()
        held = [] if carries_held else self._held

        def with_held(session: Session) -> T:
            if held:
                checkpoints.record_checkpoints(session, **self._key(), rows=held)
            return work(session)

        try:
            result = write_retrying(self.ref.db, with_held, give_up_after=DB_OUTAGE_SECONDS, what=what)
            self._held = []
            return result
        except FencedOutError as exc:
            self._fenced = str(exc)
            log.warning("%s refused: %s", what, exc)
            raise AttemptFenced(str(exc)) from exc


def with_tensorboard(hooks: DbHooks, run_dir: Path) -> Any:
    """The database hooks first (a fenced-out attempt raises there, so it writes nothing more), then
    TensorBoard event files under ``<run dir>/tensorboard``; the database hooks alone (and a warning)
    when the tensorboard package is not installed."""
    tensorboard, notice = open_tensorboard(run_dir)
    if notice:
        log.warning("job %s: %s", hooks.ref.job_id, notice)
    return CompositeHooks(hooks, tensorboard)


def stage_since(history: list[dict[str, Any]], stage: int, restored_epoch: int) -> int:
    """The first epoch of the restored stage: the trailing run of history rows in that stage (none:
    a stage-entry checkpoint, so the stage starts with the next epoch)."""
    since = restored_epoch + 1
    for row in sorted(history, key=lambda r: int(r["epoch"]), reverse=True):
        if int(row["stage"]) != stage:
            break
        since = int(row["epoch"])
    return since


class RecordDriftError(ValueError):
    """An engine payload carries a field its jobstore record does not know: the mirrors drifted."""


def record_of(cls: type[T], values: dict[str, Any]) -> T:
    """A jobstore record from an engine payload's fields, refusing one it does not know (a field
    added to the engine but not to ``jobstore.records`` would otherwise be lost without a word)."""
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - known)
    if unknown:
        raise RecordDriftError(
            f"{cls.__name__} has no field(s) {', '.join(unknown)}: add them to jobstore.records"
        )
    return cls(**values)


def epoch_row(values: dict[str, Any]) -> EpochRow:
    """An ``EpochRow`` from an ``EpochMetrics`` dict (or a restored history row)."""
    return record_of(EpochRow, values)


def checkpoint_row(
    settings: Settings,
    path: str,
    kind: str,
    epoch: int,
    stage: int,
    val_f1: float | None = None,
    batch: int = 0,
    size_bytes: int = 0,
) -> CheckpointRow:
    """A record of the file at ``path`` (relative to the runs root, with size and sha256 when it is
    still there: an engine may already have rotated an old per-epoch file away)."""
    file = Path(path)
    present = file.is_file()
    return CheckpointRow(
        path=relative_to_runs(settings, path),
        kind=kind,
        epoch=epoch,
        stage=stage,
        val_f1=val_f1,
        size_bytes=file.stat().st_size if present else size_bytes,
        batch=batch,
        sha256=sha256_of(file) if present else None,
    )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def engine_command(view: CommandView) -> Any:
    return Command(
        kind=CommandKind(view.kind.value), command_id=view.id, params=dict(view.params),
        actor=view.actor, reason=view.reason,
    )  # fmt: skip
