"""``python -m ocec_engine evaluate``: the report and the printed summary; errors as one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ocec_engine.cli import main

REPO = Path(__file__).resolve().parents[3]


def test_evaluate_command_writes_the_report(
    folder_dataset: Path, model_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "eval"
    code = main(
        ["evaluate", str(model_checkpoint), "--data_root", str(folder_dataset), "--split", "test",
         "--out", str(out), "--target_recall_closed", "0.75", "--top_k", "4", "--bootstrap", "50"]
    )  # fmt: skip
    stdout = capsys.readouterr().out
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["threshold"]["rule"] == "recall_closed" and report["threshold"]["target"] == 0.75
    assert report["data"]["split"] == "test" and len(report["worst"]) <= 4
    assert (out / "worst.png").is_file()
    assert f"split test: {report['data']['samples']} samples" in stdout
    assert f"ROC-AUC {report['roc_auc']:.4f}" in stdout
    assert f"report: {out / 'report.json'}" in stdout


def test_the_subcommand_is_listed() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ocec_engine", "evaluate", "--help"],
        cwd=REPO, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0 and "--target_precision_closed" in proc.stdout


def test_evaluate_errors_are_one_line(
    model_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["evaluate", str(model_checkpoint), "--data_root", str(tmp_path / "nowhere"), "--out", str(tmp_path)]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "does not exist" in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        main(
            [
                "evaluate",
                str(model_checkpoint),
                "--data_root",
                "x",
                "--threshold",
                "0.5",
                "--target_recall_closed",
                "0.9",
            ]
        )
