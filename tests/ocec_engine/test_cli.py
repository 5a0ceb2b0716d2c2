"""``python -m ocec_engine``: the guide's command line end to end, make-data, export, errors, --help."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from ocec_engine.cli import build_parser, config_from_args, image_size
from ocec_engine.config import GateFailPolicy

REPO = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ocec_engine", *args], cwd=REPO, capture_output=True, text=True, timeout=240
    )


def test_the_guides_command_line_runs(reference_dir: Path, tiny_parquet_b: Path, tmp_path: Path) -> None:
    """The guide's flags verbatim (an OCEC model-A checkpoint, domain-B data), fewer epochs."""
    out = tmp_path / "runs" / "x"
    proc = _cli(
        "train", "--data_root", str(tiny_parquet_b), "--output_dir", str(out),
        "--pretrain", str(reference_dir / "ocec_ref_cosface_epoch0012.pt"),
        "--epochs", "3", "--batch_size", "1024", "--lr", "1e-4", "--freeze_backbone",
        "--unfreeze_backbone_epoch", "2", "--margin_method", "cosface", "--use_amp",
        "--image_size", "32x64", "--stage2_gate_f1", "0.0",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "AMP is CUDA-only" in proc.stderr  # the one-line notice on CPU
    assert "pretrain: 62 tensors loaded" in proc.stdout
    summaries = [line for line in proc.stdout.splitlines() if line.startswith("epoch ")]
    assert [s.split()[1] for s in summaries] == ["1/3", "2/3", "3/3"]
    assert "stage 1 -> 2 at epoch 2 (gate)" in proc.stdout
    assert "unfrozen (12): features.2.depthwise.0.weight" in proc.stdout
    assert "epoch 2/3 s2" in proc.stderr  # the progress bar of epoch 2, trained in stage 2
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [(r["epoch"], r["stage"]) for r in rows] == [(1, 1), (2, 2), (3, 2)]
    assert rows[1]["lrs"] == {"head": pytest.approx(5e-6), "backbone": pytest.approx(5e-6)}
    events = [json.loads(line)["event"] for line in (out / "events.jsonl").read_text().splitlines()]
    assert events[0] == "train_start" and events[-1] == "train_end" and "gate_check" in events
    for name in ("last.pt", "best.pt", "best.onnx", "stage1_entry.pt", "stage2_entry.pt"):
        assert (out / name).is_file()


def test_resume_from_the_cli_rewrites_metrics(tiny_parquet: Path, tmp_path: Path) -> None:
    common = ["--data_root", str(tiny_parquet), "--output_dir", str(tmp_path), "--base_channels", "8",
              "--batch_size", "64", "--augment", "none", "--no_progress", "--freeze_backbone"]  # fmt: skip
    assert _cli("train", *common, "--epochs", "2").returncode == 0
    proc = _cli(
        "train",
        *common,
        "--epochs",
        "3",
        "--resume",
        str(tmp_path / "epochs" / "epoch_0001.pt"),
        "--stage",
        "2",
    )
    assert proc.returncode == 0, proc.stderr
    assert "resumed from" in proc.stdout and "(epoch 1, batch 0)" in proc.stdout
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(r["epoch"], r["stage"]) for r in rows] == [(1, 1), (2, 2), (3, 2)]


def test_a_shut_optional_stage_three_exits_0_with_a_note(tiny_parquet: Path, tmp_path: Path) -> None:
    proc = _cli(
        "train", "--data_root", str(tiny_parquet), "--output_dir", str(tmp_path), "--base_channels", "8",
        "--batch_size", "64", "--augment", "none", "--no_progress", "--freeze_backbone", "--epochs", "2",
        "--stage", "2", "--stage3", "--stage3_gate_f1", "1.0",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr  # was 3 (stopped) after a complete stage 2
    assert "completed: epoch budget reached (2 epochs); optional stage 3 not entered" in proc.stdout
    assert (tmp_path / "best.onnx").is_file()


def test_engine_errors_are_one_line_with_exit_code_2(tmp_path: Path) -> None:
    proc = _cli("train", "--data_root", str(tmp_path / "missing"), "--output_dir", str(tmp_path / "o"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "missing" in proc.stderr and "Traceback" not in proc.stderr
    bad = _cli(
        "train",
        "--data_root",
        str(tmp_path),
        "--output_dir",
        str(tmp_path),
        "--resume",
        str(tmp_path / "no.pt"),
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_make_data_and_export(tmp_path: Path, reference_dir: Path) -> None:
    proc = _cli(
        "make-data",
        "--domain",
        "B",
        "--n",
        "16",
        "--out",
        str(tmp_path / "b"),
        "--seed",
        "1",
        "--shift",
        "0.5",
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "b" / "dataset.parquet").is_file()
    onnx_path = tmp_path / "ref.onnx"
    ckpt = reference_dir / "ocec_ref_cosface_epoch0012.pt"
    proc = _cli("export", str(ckpt), "--onnx", str(onnx_path))
    assert proc.returncode == 0, proc.stderr
    inputs = np.load(reference_dir / "sample_inputs.npy")[:4]
    session = ort.InferenceSession(str(onnx_path))
    (prob,) = session.run(None, {session.get_inputs()[0].name: inputs})
    logits = torch.tensor(np.load(reference_dir / "sample_outputs.npz")["cosface_logits"][:4])
    assert np.allclose(prob.reshape(-1), torch.softmax(logits, 1)[:, 1].numpy(), atol=1e-5)
    assert _cli("make-data", "--domain", "A", "--n", "2", "--out", str(tmp_path / "a")).returncode == 2


def test_help_documents_every_flag() -> None:
    proc = _cli("train", "--help")
    assert proc.returncode == 0
    for flag in (
        "--data_root", "--output_dir", "--pretrain", "--epochs", "--batch_size", "--lr", "--freeze_backbone",
        "--unfreeze_backbone_epoch", "--margin_method", "--use_amp", "--stage2_lr",
        "--unfreeze_backbone_ratio",
        "--stage2_gate_f1", "--on_gate_fail", "--gate_deadline_epoch", "--stage3", "--stage3_epoch",
        "--stage3_gate_f1", "--stage3_lr", "--warmup_epochs", "--weight_decay", "--seed", "--device",
        "--image_size", "--base_channels", "--num_blocks", "--val_ratio", "--augment", "--resume", "--stage",
    ):  # fmt: skip
        assert flag in proc.stdout, flag
    assert "keep-trying" in proc.stdout and "exit codes" in proc.stdout


def test_dry_run_prints_the_plan(tmp_path: Path) -> None:
    proc = _cli("train", "--data_root", "x", "--output_dir", str(tmp_path), "--freeze_backbone",
                "--unfreeze_backbone_epoch", "11", "--stage3", "--dry_run")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["stages"]["2"]["trainable_units"] == ["features.2", "features.3"]
    assert plan["stages"]["2"]["ratio_achieved"] == pytest.approx(7456 / 11264, abs=1e-6)
    assert plan["stages"]["3"]["trainable_units"][0] == "stem"
    assert not list(tmp_path.iterdir())  # nothing written


def test_flags_map_to_the_config() -> None:
    args = build_parser().parse_args(
        [
            "train",
            "--data_root",
            "d",
            "--output_dir",
            "o",
            "--stage3_gate_f1",
            "0.9",
            "--on_gate_fail",
            "pause",
            "--stage2_lr",
            "2e-5",
            "--image_size",
            "48",
            "--stage",
            "2",
        ]
    )
    cfg = config_from_args(args)
    assert cfg.stage3 is not None and cfg.stage3.gate_f1 == 0.9 and cfg.stage3.unfreeze_ratio == 1.0
    assert cfg.stage2.on_gate_fail is GateFailPolicy.PAUSE and cfg.stage2.lr == 2e-5
    assert cfg.stage2.gate_f1 == 0.8 and cfg.lr == 1e-4 and cfg.seed == 42  # the defaults
    assert cfg.image_size == (48, 48)
    assert (cfg.resume, cfg.resume_stage, cfg.stage) == (None, None, 2)
    assert cfg.freeze_backbone is False  # as OCEC: progressive only with --freeze_backbone
    assert image_size("32x64") == (32, 64)
