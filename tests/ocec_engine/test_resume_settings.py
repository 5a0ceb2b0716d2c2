"""A resume keeps its run: settings not given come from the checkpoint; given ones that differ are
printed and recorded (stdout, events.jsonl, the checkpoint's ``setting_changes``). Through the real
``python -m ocec_engine train`` command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from loop_helpers import load_state

from ocec_engine.cli import build_parser, given_settings
from ocec_engine.config import TrainConfig, default_stage3
from ocec_engine.resume_settings import merge_settings, setting_changes

REPO = Path(__file__).resolve().parents[2]
FIRST = [
    "--base_channels", "8", "--batch_size", "32", "--lr", "1e-3", "--seed", "5", "--augment", "none",
    "--freeze_backbone", "--unfreeze_backbone_epoch", "9", "--epochs", "2", "--no_progress",
]  # fmt: skip


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ocec_engine", "train", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )


def _rows(folder: Path, name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / name).read_text().splitlines()]


@pytest.fixture(scope="module")
def first_run(tiny_parquet: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stage-1 run (frozen backbone, lr 1e-3, batch 32, seed 5, no augmentation), 2 epochs."""
    out = tmp_path_factory.mktemp("first")
    proc = _cli("--data_root", str(tiny_parquet), "--output_dir", str(out), *FIRST)
    assert proc.returncode == 0, proc.stderr
    return out


def test_a_resume_without_flags_continues_the_checkpoints_run(first_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "same-run"
    proc = _cli("--resume", str(first_run / "last.pt"), "--epochs", "3", "--output_dir", str(out))

    assert proc.returncode == 0, proc.stderr
    saved = load_state(out / "last.pt")
    kept = {k: saved["train_config"][k] for k in ("freeze_backbone", "lr", "batch_size", "seed", "augment")}
    assert kept == {"freeze_backbone": True, "lr": 1e-3, "batch_size": 32, "seed": 5, "augment": "none"}
    source = load_state(first_run / "last.pt")["train_config"]
    assert saved["train_config"]["data_root"] == source["data_root"]
    before, [row] = _rows(first_run, "metrics.jsonl"), _rows(out, "metrics.jsonl")[2:]
    assert (row["epoch"], row["stage"], row["lrs"]) == (3, 1, {"head": pytest.approx(1e-3)})
    assert row["trainable_params"] == before[0]["trainable_params"]  # still only the head trains
    assert row["extra"]["plan"] == "progressive"
    changes = {"epochs": {"from": 2, "to": 3}}  # the only change: the one flag given
    assert [c["changes"] for c in saved["setting_changes"]] == [changes]
    assert "settings changed from the checkpoint's: epochs 2 -> 3" in proc.stdout


def test_explicit_changes_are_applied_printed_and_recorded(first_run: Path, tmp_path: Path) -> None:
    """Into a new folder from an epoch file: the changed settings apply, and the new folder gets the
    source run's best.pt at once (before any new epoch could be best) and a best.onnx."""
    out = tmp_path / "changed"
    proc = _cli(
        "--resume", str(first_run / "epochs" / "epoch_0002.pt"), "--output_dir", str(out), "--epochs", "3",
        "--seed", "9", "--batch_size", "16", "--no-freeze_backbone", "--no_progress",
    )  # fmt: skip

    assert proc.returncode == 0, proc.stderr
    said = "epochs 2 -> 3, batch_size 32 -> 16, freeze_backbone True -> False, seed 5 -> 9"
    assert f"settings changed on resume: {said}" in proc.stdout
    [event] = [e for e in _rows(out, "events.jsonl") if e["event"] == "stage_change"]
    assert (event["from_stage"], event["to_stage"], event["trigger"], event["epoch"]) == (1, 1, "resume", 3)
    assert set(event["evidence"]["changes"]) == {"batch_size", "epochs", "freeze_backbone", "seed"}
    saved = load_state(out / "last.pt")
    assert saved["setting_changes"][0]["changes"]["seed"] == {"from": 5, "to": 9}
    [row] = _rows(out, "metrics.jsonl")[2:]
    assert row["extra"]["plan"] == "full" and row["trainable_params"] > 1000  # the backbone trains now
    events = _rows(out, "events.jsonl")
    carried = next(e for e in events if e["event"] == "checkpoint" and e["kind"] == "best")
    source_best = load_state(first_run / "best.pt")["epoch"]
    assert (carried["epoch"], carried["path"]) == (source_best, str(out / "best.pt"))
    assert load_state(out / "best.pt")["epoch"] == saved["best"]["epoch"]
    assert (out / "best.onnx").is_file()
    assert f"best {out / 'best.pt'}" in proc.stdout


def test_flags_left_out_are_not_given() -> None:
    parse = build_parser().parse_args
    assert given_settings(parse(["train", "--resume", "x.pt"])) == {}
    given = given_settings(parse(["train", "--no-stage3", "--no-freeze_backbone", "--stage2_gate_f1", "0.7"]))
    assert given == {"stage3": None, "freeze_backbone": False, "stage2": {"gate_f1": 0.7}}
    assert given_settings(parse(["train", "--stage3_lr", "1e-5"])) == {"stage3": {"lr": 1e-5}}


def test_sections_merge_field_by_field_and_changes_name_them() -> None:
    saved = TrainConfig(data_root="d", output_dir="o", stage3=default_stage3()).to_dict()
    merged = merge_settings(saved, {"stage2": {"gate_f1": 0.7}, "stage3": {"lr": 1e-5}, "output_dir": "p"})
    assert merged.stage2.gate_f1 == 0.7 and merged.stage2.lr_factor == 0.05
    assert merged.stage3 is not None and (merged.stage3.lr, merged.stage3.gate_f1) == (1e-5, 0.85)
    assert setting_changes(saved, merged) == {
        "stage2.gate_f1": {"from": 0.8, "to": 0.7},
        "stage3.lr": {"from": None, "to": 1e-5},
    }  # output_dir is bookkeeping, not a change of the run
    dropped = merge_settings(saved, {"stage3": None})
    assert dropped.stage3 is None and set(setting_changes(saved, dropped)) == {"stage3"}
