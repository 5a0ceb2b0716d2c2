"""``api.status.baseline``: model A's score and whether the best epoch beats it, from the engine's
per-epoch report (the latest live row's ``extra``)."""

from __future__ import annotations

from typing import Any

from api.status import baseline, next_gate
from jobstore.models import Job


def _job(extra: dict[str, Any]) -> Job:
    return Job(name="j", spec={}, latest_metrics={"epoch": 3, "val_f1": 0.7, "extra": extra})


def test_the_baseline_comes_from_the_engines_latest_report() -> None:
    found = baseline(_job({"baseline_f1": 0.81, "baseline_val_loss": 0.42, "beats_baseline": False}))
    assert found is not None and (found.f1, found.val_loss, found.beaten) == (0.81, 0.42, False)
    beaten = baseline(_job({"baseline_f1": 0.5, "baseline_val_loss": None, "beats_baseline": True}))
    assert beaten is not None and (beaten.f1, beaten.val_loss, beaten.beaten) == (0.5, None, True)


def test_no_baseline_before_the_first_epoch_or_from_an_engine_without_one() -> None:
    assert baseline(Job(name="j", spec={})) is None
    assert baseline(_job({"train_accuracy": 0.9})) is None
    unknown = baseline(_job({"baseline_f1": 0.5, "beats_baseline": None}))  # no epoch compared yet
    assert unknown is not None and unknown.beaten is None


def test_next_gate_is_read_at_each_stages_own_gate_epoch() -> None:
    spec = {"data_root": "B", "unfreeze_backbone_epoch": 4, "stage3": {"gate_f1": 0.9, "epoch": 7}}
    gates = [next_gate(Job(name="j", spec=spec, stage=stage)) for stage in (1, 2, 3)]
    assert [(g.stage, g.earliest_epoch, g.threshold) for g in gates if g] == [(2, 4, 0.8), (3, 7, 0.9)]
    assert gates[2] is None  # no stage after 3
    no_stage3 = {"data_root": "B", "unfreeze_backbone_epoch": 4}
    assert next_gate(Job(name="j", spec=no_stage3, stage=2)) is None
