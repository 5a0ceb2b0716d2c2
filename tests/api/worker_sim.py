"""Play the worker's part with jobstore's own functions, so API tests see realistic rows."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from jobstore import repo
from jobstore.db import write_transaction
from jobstore.kinds import CheckpointKind
from jobstore.records import CheckpointRow, EpochRow, GateCheckRow, StageChange
from jobstore.states import AttemptOutcome

WORKER = "sim-worker"


@dataclass
class SimWorker:
    engine: Engine
    job_id: str
    attempt: int = 1

    def claim(self) -> None:
        with write_transaction(self.engine) as tx:
            job = repo.get_job(tx, self.job_id)
            self.attempt = job.attempt
            claimed = repo.claim(
                tx, job_id=self.job_id, attempt=self.attempt, worker=WORKER, pid=1, gpu=None, lease_seconds=60
            )
            assert claimed is not None, "the job was not claimable"

    def epoch(self, epoch: int, stage: int = 1, val_f1: float = 0.7, seconds: float = 2.0) -> None:
        row = EpochRow(
            epoch=epoch, stage=stage, train_loss=0.5, val_loss=0.6, val_f1=val_f1, val_precision=0.7,
            val_recall=0.7, val_accuracy=0.75, lrs={"head": 1e-4}, trainable_params=1000,
            epoch_seconds=seconds,
        )  # fmt: skip
        with write_transaction(self.engine) as tx:
            repo.record_epoch(tx, job_id=self.job_id, attempt=self.attempt, row=row)

    def gate(self, epoch: int, f1: float, threshold: float = 0.8, stage: int = 2) -> None:
        check = GateCheckRow(
            epoch=epoch, stage=stage, f1=f1, threshold=threshold, passed=f1 >= threshold,
            policy="keep-trying", action="enter" if f1 >= threshold else "wait",
            reason=f"F1 {f1} vs gate {threshold}",
        )  # fmt: skip
        with write_transaction(self.engine) as tx:
            repo.record_gate_check(tx, job_id=self.job_id, attempt=self.attempt, check=check)

    def stage(self, to_stage: int, epoch: int) -> None:
        change = StageChange(
            from_stage=to_stage - 1, to_stage=to_stage, epoch=epoch, trigger="gate", reason="gate passed"
        )
        with write_transaction(self.engine) as tx:
            repo.record_stage_change(tx, job_id=self.job_id, attempt=self.attempt, change=change)

    def checkpoint(
        self, path: str, kind: CheckpointKind, epoch: int, stage: int = 1, val_f1: float | None = None
    ) -> None:
        row = CheckpointRow(
            path=path, kind=kind.value, epoch=epoch, stage=stage, val_f1=val_f1, size_bytes=10
        )
        with write_transaction(self.engine) as tx:
            repo.record_checkpoint(tx, job_id=self.job_id, attempt=self.attempt, row=row)

    def finish(self, outcome: AttemptOutcome = AttemptOutcome.COMPLETED, reason: str = "done") -> None:
        with write_transaction(self.engine) as tx:
            repo.finish_attempt(tx, job_id=self.job_id, attempt=self.attempt, outcome=outcome, reason=reason)
