"""A stored job (spec + resume/fork overrides) → the engine's ``TrainConfig``, field by field.

The API validated the spec and confined its paths when the job was submitted; the worker checks
again here because the database is shared and its rows are not trusted to stay what the API wrote.
Every path handed to the engine is absolute and inside its configured root.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from jobstore.paths import within
from jobstore.repo.resume import STOP
from jobstore.settings import Settings
from jobstore.spec import JobSpec, StageGateSpec
from ocec_engine.config import AugmentPolicy, GateFailPolicy, MarginMethod, StageGateConfig, TrainConfig

CHECK_EVERY_BATCHES = 1


class JobConfigError(ValueError):
    """The stored job cannot become a training run (bad spec, path outside its root, missing file)."""


@dataclass(frozen=True)
class RunPlan:
    """What this attempt runs: the validated spec and where it restores from.

    jobstore has already folded resume/fork overrides (lr, epochs, stage-2 settings) into the job's
    spec; only the one-shot ``stage`` override remains, and it becomes the engine's ``resume_stage``.
    """

    spec: JobSpec
    resume: str | None = None  # checkpoint path relative to the runs root; None: a fresh start
    resume_stage: int | None = None
    # an operator's "stop" at a failed gate: end the run at the checkpoint's epoch (the engine then
    # restores it, trains nothing and exports the best model); the decision says who and why
    stop_at: int | None = None
    decision: dict[str, Any] = field(default_factory=dict)
    resumed_by: tuple[str, str] | None = None  # (actor, reason) of the operator's resume or decision
    inherited_from: str | None = None  # a fork: the parent whose history the checkpoint carries
    resume_commands: bool = True  # False: drop the commands queued in the checkpoint (operator's resume)


def plan_run(spec: dict[str, Any], resume_from: dict[str, Any], job_id: str | None = None) -> RunPlan:
    """The plan for a job's stored ``spec`` and ``resume_from`` (see ``jobstore.repo.resume``)."""
    try:
        validated = JobSpec.model_validate(spec)
    except ValidationError as exc:
        raise JobConfigError(f"the stored job spec is not valid: {_first_error(exc)}") from exc
    checkpoint = resume_from.get("checkpoint") or None
    stage = (resume_from.get("overrides") or {}).get("stage")
    decision = dict(resume_from.get("decision") or {})
    stop = decision.get("action") == STOP and checkpoint is not None
    actor = resume_from.get("actor")
    source = resume_from.get("job_id")
    return RunPlan(
        validated,
        checkpoint,
        int(stage) if stage is not None else None,
        stop_at=int(resume_from.get("epoch") or 0) if stop else None,
        decision=decision,
        resumed_by=(str(actor), str(resume_from.get("reason") or "")) if actor else None,
        inherited_from=str(source) if source and job_id and source != job_id else None,
        resume_commands=not resume_from.get("drop_queued_commands", False),
    )


def build_train_config(plan: RunPlan, job_id: str, settings: Settings) -> TrainConfig:
    """The engine config of one attempt: output under ``<runs_root>/<job_id>``, paths confined."""
    spec = plan.spec
    height, width = (int(v) for v in spec.image_size.split("x"))
    try:
        return TrainConfig(
            data_root=str(confined(settings.data_root, spec.data_root, "data_root", must_exist=True)),
            pretrain=_pretrain(plan, settings),
            output_dir=str(run_dir(settings, job_id)),
            resume=(
                str(confined(settings.runs_root, plan.resume, "checkpoint", must_exist=True))
                if plan.resume
                else None
            ),
            resume_stage=plan.resume_stage,
            resume_commands=plan.resume_commands,
            stage=spec.stage,
            # a stop decision: the budget ends at the checkpoint, so the engine trains nothing more
            epochs=plan.stop_at if plan.stop_at is not None else spec.epochs,
            batch_size=spec.batch_size,
            lr=spec.lr,
            weight_decay=spec.weight_decay,
            warmup_epochs=spec.warmup_epochs,
            freeze_backbone=spec.freeze_backbone,
            unfreeze_backbone_epoch=spec.unfreeze_backbone_epoch,
            stage2=gate_config(spec.stage2),
            stage3=gate_config(spec.stage3) if spec.stage3 is not None else None,
            margin_method=MarginMethod(spec.margin_method),
            use_amp=spec.use_amp,
            seed=spec.seed,
            image_size=(height, width),
            base_channels=spec.base_channels,
            num_blocks=spec.num_blocks,
            dropout=spec.dropout,
            val_ratio=spec.val_ratio,
            augment=AugmentPolicy(spec.augment),
            test_fraction=spec.test_fraction,
            retention_data_root=(
                str(
                    confined(
                        settings.data_root, spec.retention_data_root, "retention_data_root", must_exist=True
                    )
                )
                if spec.retention_data_root
                else None
            ),
            checkpoint_every=spec.checkpoint_every or settings.checkpoint_every,
            # DbHooks answer poll_commands / should_stop from memory (the heartbeat thread does the
            # database work), so checking after every batch is free and makes "next batch boundary" exact.
            check_every_batches=CHECK_EVERY_BATCHES,
        )
    except ValueError as exc:  # an enum value the engine's copy lacks (tests/worker/test_mirrors.py)
        raise JobConfigError(f"the job spec does not fit the engine: {exc}") from exc


def gate_config(section: StageGateSpec) -> StageGateConfig:
    """A gated stage's spec section as the engine's settings (the same fields, checked by a test)."""
    return StageGateConfig(
        gate_f1=section.gate_f1,
        unfreeze_ratio=section.unfreeze_ratio,
        lr_factor=section.lr_factor,
        lr=section.lr,
        on_gate_fail=GateFailPolicy(section.on_gate_fail),
        gate_deadline_epoch=section.gate_deadline_epoch,
        epoch=section.epoch,
    )


def _pretrain(plan: RunPlan, settings: Settings) -> str | None:
    """The start weights, read on a fresh start only: a resume takes its weights from the checkpoint."""
    if not plan.spec.pretrain:
        return None
    return str(confined(settings.model_root, plan.spec.pretrain, "pretrain", must_exist=plan.resume is None))


def run_dir(settings: Settings, job_id: str) -> Path:
    return confined(settings.runs_root, job_id, "job id", must_exist=False)


def confined(root: Path, relative: str, what: str, *, must_exist: bool) -> Path:
    """``root / relative`` resolved (symlinks followed), refused when it leaves ``root``."""
    target = within(root, relative, absolute_ok=False)
    if target is None:
        raise JobConfigError(f"{what} {relative!r} leaves its configured root {root.resolve()}")
    if must_exist and not target.exists():
        raise JobConfigError(f"{what} {relative!r} not found: {target} does not exist")
    return target


def relative_to_runs(settings: Settings, path: str) -> str:
    """A checkpoint path as stored in the database: relative to the runs root when inside it."""
    real = Path(path).resolve()
    root = settings.runs_root.resolve()
    return real.relative_to(root).as_posix() if real.is_relative_to(root) else str(real)


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "spec"
    return f"{where}: {error['msg']}"
