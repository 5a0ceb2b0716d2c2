"""A training run evaluates itself: model A before, each stage's best, best.pt after; the threshold
is stored in best.pt and in the ONNX export; the test split is used when the data has one."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
import torch

from ocec_engine.evaluation import evaluate_to_dir
from ocec_engine.evaluation.models import load_model
from ocec_engine.hooks import CheckpointKind, Outcome
from ocec_engine.loop import train
from tests.ocec_engine.loop_helpers import RecordingHooks, config, pause


@pytest.fixture(scope="module")
def evaluated_run(
    folder_dataset: Path, tiny_parquet: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, RecordingHooks]:
    """3 epochs on the folder dataset (it has test/), stage 2 from epoch 2, domain A = the parquet."""
    out = tmp_path_factory.mktemp("run")
    hooks = RecordingHooks()
    cfg = config(
        folder_dataset, out, epochs=3, unfreeze_backbone_epoch=2, retention_data_root=str(tiny_parquet),
        evaluate=True,
    )  # fmt: skip
    train(cfg, hooks)
    return out, hooks


def test_the_run_writes_the_before_after_table(evaluated_run: tuple[Path, RecordingHooks]) -> None:
    out, hooks = evaluated_run
    assert hooks.end is not None
    summary = hooks.end.evaluation
    assert summary is not None and summary == json.loads((out / "evaluation" / "summary.json").read_text())
    tags = [row["tag"] for row in summary["table"]]
    assert tags[0] == "before_B" and "after_B" in tags and {"before_A", "after_A"} <= set(tags)
    assert any(t.startswith("stage") for t in tags)
    assert summary["split"] == "test"  # the folder dataset has a test/ split
    by_tag = {row["tag"]: row for row in summary["table"]}
    assert by_tag["after_B"]["split"] == "test" and by_tag["before_A"]["split"] == "val"  # A has no test rows
    assert by_tag["before_A"]["model"] == "A" and by_tag["after_B"]["model"] == "best"
    assert summary["forgetting"] == pytest.approx(by_tag["before_A"]["f1"] - by_tag["after_A"]["f1"])
    for tag, path in summary["reports"].items():
        report = json.loads((out / path).read_text())
        assert report["schema"] == 1 and (out / "evaluation" / tag / "worst.png").is_file()
        if tag.endswith("_B"):
            assert report["data"]["samples"] == 24  # the test folder only: never trained on
    before = json.loads((out / summary["reports"]["before_B"]).read_text())
    assert before["threshold"]["rule"] == "fixed"  # chosen on val: a test report never picks its own
    after = json.loads((out / summary["reports"]["after_B"]).read_text())
    assert after["threshold"] == {
        "value": summary["threshold"],
        "rule": "fixed",
        "target": summary["threshold"],
    }
    assert by_tag["after_B"]["f1_at_threshold"] == pytest.approx(after["at_threshold"]["f1"])


def test_the_threshold_travels_with_the_model(evaluated_run: tuple[Path, RecordingHooks]) -> None:
    out, hooks = evaluated_run
    assert hooks.end is not None and hooks.end.evaluation is not None
    chosen = hooks.end.evaluation["threshold"]
    stored = torch.load(out / "best.pt", weights_only=True)["threshold"]
    assert stored["value"] == chosen and stored["rule"] == "f1" and stored["split"] == "val"
    meta = {p.key: p.value for p in onnx.load(str(out / "best.onnx")).metadata_props}
    assert float(meta["ocec_threshold"]) == chosen
    assert load_model(out / "best.onnx").stored_threshold == chosen
    assert load_model(out / "best.pt").stored_threshold == chosen
    last_best = [c for c in hooks.checkpoints if c.kind is CheckpointKind.BEST][-1]
    assert last_best.size_bytes == (out / "best.pt").stat().st_size  # the rewritten file is reported


def test_the_trained_model_scores_the_same_through_onnx(
    evaluated_run: tuple[Path, RecordingHooks], folder_dataset: Path, tmp_path: Path
) -> None:
    out, _ = evaluated_run
    a = evaluate_to_dir(out / "best.pt", folder_dataset, tmp_path / "pt", split="test", bootstrap=50)
    b = evaluate_to_dir(out / "best.onnx", folder_dataset, tmp_path / "onnx", split="test", bootstrap=50)
    assert [a[k] for k in ("at_0_5", "sweep", "data")] == [b[k] for k in ("at_0_5", "sweep", "data")]
    assert a["roc_auc"] == pytest.approx(b["roc_auc"], abs=1e-9)
    assert [r["row"] for r in a["worst"]] == [r["row"] for r in b["worst"]]


def test_the_per_epoch_path_is_unchanged(evaluated_run: tuple[Path, RecordingHooks]) -> None:
    """Evaluation happens only at the start, at stage changes and at the end: no epoch row carries it."""
    _, hooks = evaluated_run
    assert [m.epoch for m in hooks.epochs] == [1, 2, 3]
    assert all("evaluation" not in m.extra for m in hooks.epochs)


def test_a_resumed_run_keeps_the_reports_of_its_first_attempt(tiny_parquet_b: Path, tmp_path: Path) -> None:
    """Paused in epoch 2, resumed: the summary holds attempt 1's before_B and the end's after_B,
    scored on val (this parquet has no test rows)."""
    first = RecordingHooks(script={(2, 0): [pause()]})
    paused = train(config(tiny_parquet_b, tmp_path, epochs=3, evaluate=True), first)
    assert paused.outcome is Outcome.PAUSED and paused.evaluation is None
    assert (tmp_path / "evaluation" / "before_B" / "report.json").is_file()
    resumed = train(
        config(tiny_parquet_b, tmp_path, epochs=3, evaluate=True, resume=str(tmp_path / "interrupt.pt"))
    )
    assert resumed.evaluation is not None
    tags = [row["tag"] for row in resumed.evaluation["table"]]
    assert tags[0] == "before_B" and tags[-1] == "after_B"
    assert resumed.evaluation["split"] == "val" and not resumed.evaluation["notes"]
