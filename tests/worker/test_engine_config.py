"""Stored spec + overrides → TrainConfig: paths confined under the settings roots, overrides applied."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobstore.settings import Settings
from jobstore.spec import JobSpec, spec_dict
from worker.engine_config import (
    JobConfigError,
    build_train_config,
    confined,
    plan_run,
    relative_to_runs,
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = Settings(home=tmp_path)
    (s.data_root / "setB").mkdir(parents=True)
    s.model_root.mkdir(parents=True)
    (s.model_root / "A.pt").write_bytes(b"x")
    (s.runs_root / "parent").mkdir(parents=True)
    (s.runs_root / "parent" / "best.pt").write_bytes(b"x")
    return s


def _spec(**values: object) -> dict[str, object]:
    return spec_dict(JobSpec.model_validate({"data_root": "setB", "pretrain": "A.pt", **values}))


def test_fresh_job(settings: Settings) -> None:
    plan = plan_run(_spec(epochs=12, unfreeze_backbone_epoch=4, image_size="32x64"), {})
    config = build_train_config(plan, "job1", settings)
    assert config.data_root == str(settings.data_root / "setB")
    assert config.pretrain == str(settings.model_root / "A.pt")
    assert config.output_dir == str(settings.runs_root / "job1")
    assert config.resume is None and config.resume_stage is None
    assert (config.epochs, config.unfreeze_backbone_epoch, config.image_size) == (12, 4, (32, 64))
    assert config.stage2.gate_f1 == pytest.approx(0.80)
    assert config.check_every_batches == 1  # stop requests and commands are seen at every batch


def test_checkpoint_every_comes_from_the_spec_else_the_setting(settings: Settings) -> None:
    assert build_train_config(plan_run(_spec(checkpoint_every=5), {}), "j", settings).checkpoint_every == 5
    every_3 = settings.model_copy(update={"checkpoint_every": 3})
    assert build_train_config(plan_run(_spec(), {}), "j", every_3).checkpoint_every == 3


def test_resume_point_and_one_shot_stage(settings: Settings) -> None:
    resume_from = {"from": "best", "checkpoint": "parent/best.pt", "epoch": 3, "overrides": {"stage": 2}}
    config = build_train_config(plan_run(_spec(epochs=10), resume_from), "fork1", settings)
    assert config.resume == str(settings.runs_root / "parent" / "best.pt")
    assert config.resume_stage == 2


def test_a_resume_does_not_need_the_pretrain_any_more(settings: Settings) -> None:
    (settings.model_root / "A.pt").unlink()  # the weights come from the checkpoint
    resume_from = {"from": "best", "checkpoint": "parent/best.pt", "epoch": 3, "overrides": {}}
    config = build_train_config(plan_run(_spec(epochs=10), resume_from), "job1", settings)
    assert config.resume == str(settings.runs_root / "parent" / "best.pt")
    with pytest.raises(JobConfigError, match=r"pretrain 'A\.pt' not found"):
        build_train_config(plan_run(_spec(), {}), "job2", settings)


@pytest.mark.parametrize(
    "resume_from", [{}, {"from": "last", "checkpoint": None, "epoch": 0, "overrides": {}}]
)
def test_no_checkpoint_is_a_fresh_start(settings: Settings, resume_from: dict[str, object]) -> None:
    config = build_train_config(plan_run(_spec(), resume_from), "j", settings)
    assert config.resume is None and config.resume_stage is None


def test_an_invalid_stored_spec_is_refused(settings: Settings) -> None:
    with pytest.raises(JobConfigError, match="epochs"):
        plan_run({**_spec(), "epochs": 0}, {})
    with pytest.raises(JobConfigError, match="unknown_field"):
        plan_run({**_spec(), "unknown_field": 1}, {})


@pytest.mark.parametrize(
    ("field", "value"),
    [("data_root", "../elsewhere"), ("data_root", "/etc"), ("pretrain", "../../A.pt"), ("data_root", "nope")],
)
def test_paths_must_stay_in_their_root(settings: Settings, field: str, value: str) -> None:
    spec = _spec()
    spec[field] = value
    with pytest.raises(JobConfigError, match=field):
        build_train_config(plan_run(spec, {}), "j", settings)


def test_symlink_out_of_the_root_is_refused(settings: Settings, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (settings.data_root / "link").symlink_to(outside)
    with pytest.raises(JobConfigError, match="leaves"):
        build_train_config(plan_run(_spec(data_root="link"), {}), "j", settings)


def test_resume_checkpoint_confined_to_runs_root(settings: Settings) -> None:
    with pytest.raises(JobConfigError, match="checkpoint"):
        build_train_config(plan_run(_spec(), {"checkpoint": "../data/setB"}), "j", settings)
    with pytest.raises(JobConfigError, match="not found"):
        build_train_config(plan_run(_spec(), {"checkpoint": "parent/missing.pt"}), "j", settings)


def test_helpers(settings: Settings) -> None:
    assert confined(settings.runs_root, "a/b", "x", must_exist=False) == settings.runs_root / "a" / "b"
    inside = str(settings.runs_root / "j" / "last.pt")
    assert relative_to_runs(settings, inside) == "j/last.pt"
    assert relative_to_runs(settings, "/tmp/x.pt") == "/tmp/x.pt"


def test_every_spec_setting_reaches_the_engine_as_given(settings: Settings) -> None:
    """No default in the spec: each field differs from the engine's, so a field mapped from the wrong
    one (or left to the engine's default) shows."""
    # stage 2 has no epoch of its own (the spec refuses one): its gate epoch is unfreeze_backbone_epoch
    section = {"gate_f1": 0.61, "unfreeze_ratio": 0.31, "lr_factor": 0.21, "lr": 0.003,
               "on_gate_fail": "stop", "gate_deadline_epoch": 9, "epoch": None}  # fmt: skip
    given = {
        "stage": 3, "lr": 0.002, "epochs": 11, "batch_size": 17, "freeze_backbone": True,
        "unfreeze_backbone_epoch": 3, "stage2": section, "margin_method": "arcface", "use_amp": True,
        "warmup_epochs": 2, "weight_decay": 0.03, "seed": 5, "image_size": "40x24", "base_channels": 12,
        "num_blocks": 3, "dropout": 0.15, "val_ratio": 0.35, "augment": "light",
        "stage3": {**section, "gate_f1": 0.71, "on_gate_fail": "pause", "epoch": 6},
    }  # fmt: skip
    config = build_train_config(plan_run(_spec(**given), {}), "j", settings).to_dict()
    assert {name: config[name] for name in given} == {**given, "image_size": [40, 24]}
    assert config["data_root"] == str(settings.data_root / "setB")
    assert config["pretrain"] == str(settings.model_root / "A.pt")
