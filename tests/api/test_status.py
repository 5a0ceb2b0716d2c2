"""``api.status.baseline``: model A's score and whether the best epoch beats it, from the engine's
per-epoch report (the latest live row's ``extra``)."""

from __future__ import annotations

from typing import Any

from api.status import baseline
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
