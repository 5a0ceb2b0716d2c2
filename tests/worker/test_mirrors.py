"""The engine may not import jobstore, so it keeps its own copy of the job vocabulary (the enums, the
defaults, the hook payloads). The worker sees both sides: these tests fail as soon as the copies drift."""

from __future__ import annotations

import argparse
import dataclasses
from enum import StrEnum
from typing import Any

import pytest
from pydantic import BaseModel

from jobstore import kinds, records, spec
from jobstore.settings import Settings
from jobstore.states import AttemptOutcome
from ocec_engine import config, hooks
from ocec_engine.cli import build_parser, config_from_args
from worker.hooks import RecordDriftError, epoch_row, record_of

ENUMS = [
    (spec.GateFailPolicy, config.GateFailPolicy),
    (spec.MarginMethod, config.MarginMethod),
    (spec.AugmentPolicy, config.AugmentPolicy),
    (kinds.CommandKind, hooks.CommandKind),
]
RECORDS = [
    (records.EpochRow, hooks.EpochMetrics),
    (records.StageChange, hooks.StageEvent),
    (records.GateCheckRow, hooks.GateCheck),
]
# train flags whose help names a default: flag -> the spec field ("stage2." / "stage3.": its section)
HELP_DEFAULTS = {
    "epochs": "epochs",
    "batch_size": "batch_size",
    "lr": "lr",
    "weight_decay": "weight_decay",
    "warmup_epochs": "warmup_epochs",
    "seed": "seed",
    "val_ratio": "val_ratio",
    "test_fraction": "test_fraction",
    "image_size": "image_size",
    "augment": "augment",
    "margin_method": "margin_method",
    "base_channels": "base_channels",
    "num_blocks": "num_blocks",
    "dropout": "dropout",
    "stage2_gate_f1": "stage2.gate_f1",
    "unfreeze_backbone_ratio": "stage2.unfreeze_ratio",
    "stage2_lr_factor": "stage2.lr_factor",
    "on_gate_fail": "stage2.on_gate_fail",
    "stage3_gate_f1": "stage3.gate_f1",
    "stage3_lr_factor": "stage3.lr_factor",
    "stage3_unfreeze_ratio": "stage3.unfreeze_ratio",
    "stage3_on_gate_fail": "stage3.on_gate_fail",
}
# TrainConfig fields a job spec has no say in: the worker sets them (paths, resume, polling) or the
# engine's own defaults hold (device, kept epoch files)
WORKER_ONLY = {
    "output_dir", "resume", "resume_stage", "resume_commands", "device", "check_every_batches",
    "keep_epoch_checkpoints", "evaluate",
}  # fmt: skip


def values(enum: type[StrEnum]) -> list[str]:
    return [member.value for member in enum]


def names(record: type[Any]) -> list[str]:
    return [f.name for f in dataclasses.fields(record)]


def spec_defaults(model: type[BaseModel], **required: Any) -> dict[str, Any]:
    return model(**required).model_dump(mode="json", exclude=set(required) | spec.SERVICE_FIELDS)


def as_spec_value(value: Any) -> Any:
    """An engine default in the spec's form (enums as values, image size as ``HxW``)."""
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, config.StageGateConfig):
        return {k: as_spec_value(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, tuple):
        return "x".join(str(v) for v in value)
    return value


@pytest.mark.parametrize(("ours", "engines"), ENUMS, ids=lambda e: e.__name__)
def test_the_enums_have_the_same_values(ours: type[StrEnum], engines: type[StrEnum]) -> None:
    assert values(ours) == values(engines)


def test_every_engine_outcome_is_an_attempt_outcome() -> None:
    assert values(AttemptOutcome)[: len(hooks.Outcome)] == values(hooks.Outcome)
    assert set(values(AttemptOutcome)) - set(values(hooks.Outcome)) == {"failed", "lost"}  # the service's own


def test_every_engine_checkpoint_kind_is_a_stored_kind() -> None:
    assert values(kinds.CheckpointKind)[: len(hooks.CheckpointKind)] == values(hooks.CheckpointKind)
    assert set(values(kinds.CheckpointKind)) - set(values(hooks.CheckpointKind)) == {"onnx"}  # the export


@pytest.mark.parametrize(("record", "payload"), RECORDS, ids=lambda r: r.__name__)
def test_the_records_have_the_payloads_fields(record: type[Any], payload: type[Any]) -> None:
    assert names(record) == names(payload)


def test_a_checkpoint_row_holds_every_checkpoint_info_field() -> None:
    assert set(names(hooks.CheckpointInfo)) <= set(names(records.CheckpointRow))


def test_a_payload_field_the_record_does_not_know_fails_loudly() -> None:
    row = {"epoch": 1, "stage": 1, "val_f1": 0.5}
    assert epoch_row(row).val_f1 == 0.5
    with pytest.raises(RecordDriftError, match=r"EpochRow has no field.*grad_norm"):
        epoch_row({**row, "grad_norm": 1.0})
    with pytest.raises(RecordDriftError, match="GateCheckRow"):
        record_of(records.GateCheckRow, {"epoch": 1, "margin": 0.1})


def test_every_spec_setting_reaches_the_engine() -> None:
    engine_fields = set(names(config.TrainConfig)) - WORKER_ONLY
    assert set(spec.JobSpec.model_fields) - spec.SERVICE_FIELDS == engine_fields
    assert set(spec.StageGateSpec.model_fields) == set(names(config.StageGateConfig))


def test_the_spec_defaults_are_the_engines() -> None:
    engine = config.TrainConfig(data_root="", output_dir="")
    ours = spec_defaults(spec.JobSpec, data_root="d")  # required in a spec
    assert ours.pop("stage3") is None and engine.stage3 is None
    assert ours.pop("checkpoint_every") is None  # None: the worker's setting, whose default is the engine's
    assert Settings.model_fields["checkpoint_every"].default == engine.checkpoint_every
    assert ours == {name: as_spec_value(getattr(engine, name)) for name in ours}


def test_the_stage_section_defaults_are_the_engines() -> None:
    assert spec_defaults(spec.StageGateSpec) == as_spec_value(config.StageGateConfig())
    assert spec_defaults(spec.Stage3Spec) == as_spec_value(config.default_stage3())


def test_a_fresh_cli_run_starts_from_the_spec_defaults() -> None:
    """The engine's command line fills a fresh run with the same defaults, except that (as OCEC) a
    run without ``--freeze_backbone`` is a full fine-tune."""
    args = build_parser().parse_args(["train", "--data_root", "d", "--output_dir", "o"])
    cli = config_from_args(args)
    ours = spec_defaults(spec.JobSpec, data_root="d")
    del ours["stage3"], ours["checkpoint_every"]
    assert ours.pop("freeze_backbone") is True and cli.freeze_backbone is False
    assert ours == {name: as_spec_value(getattr(cli, name)) for name in ours}
    assert cli.stage3 is None


def test_the_cli_help_names_the_spec_defaults() -> None:
    [sub] = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    helps = {action.dest: action.help or "" for action in sub.choices["train"]._actions}
    ours = spec_defaults(spec.JobSpec, data_root="d")
    for section, model in (("stage2", spec.StageGateSpec), ("stage3", spec.Stage3Spec)):
        ours |= {f"{section}.{name}": value for name, value in spec_defaults(model).items()}
    unnamed = {
        flag: ours[field]
        for flag, field in HELP_DEFAULTS.items()
        if not any(f"default {shown}" in helps[flag] for shown in written(ours[field]))
    }
    assert unnamed == {}, "the --help of these flags does not name the spec's default"


def written(value: Any) -> set[str]:
    return {str(value), f"{value:g}"} if isinstance(value, float) else {str(value)}


def test_resume_merges_the_same_sections_field_by_field() -> None:
    from jobstore.repo import resume
    from ocec_engine import resume_settings

    assert resume.SECTIONS == resume_settings.SECTIONS
    assert set(resume.SECTIONS) <= set(spec.JobSpec.model_fields)
