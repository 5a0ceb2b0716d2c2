"""Safe checkpoint reading, state-dict extraction and pretrain reports."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from ocec_engine.config import MarginMethod
from ocec_engine.errors import CheckpointError, PretrainMismatchError, UnsafeCheckpointError
from ocec_engine.model import ModelConfig, build_model
from ocec_engine.weights import (
    PretrainReport,
    extract_state_dict,
    load_pretrain,
    model_config_from_checkpoint,
    read_checkpoint,
)


class _Payload:
    """Pickles to "call os.system(touch marker)" — must never run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def _save(obj: object, path: Path) -> Path:
    torch.save(obj, path)
    return path


def test_unsafe_pickle_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    model = build_model(ModelConfig())
    path = _save({"model_state": model.state_dict(), "extra": _Payload(marker)}, tmp_path / "evil.pt")
    with pytest.raises(UnsafeCheckpointError, match=r"evil\.pt"):
        read_checkpoint(path)
    with pytest.raises(UnsafeCheckpointError):
        load_pretrain(model, path)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("content", "match"),
    [(b"", "not a"), (b"definitely not a checkpoint", "not a"), (None, "not found")],
)
def test_unreadable_files_name_the_file(tmp_path: Path, content: bytes | None, match: str) -> None:
    path = tmp_path / "bad.pt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=match) as info:
        read_checkpoint(path)
    assert str(path) in str(info.value)


def test_truncated_and_non_dict(tmp_path: Path) -> None:
    good = _save({"model_state": build_model(ModelConfig()).state_dict()}, tmp_path / "good.pt")
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"cut\.pt"):
        read_checkpoint(cut)
    with pytest.raises(CheckpointError, match="expected a dict"):
        read_checkpoint(_save([1, 2], tmp_path / "list.pt"))


def test_extract_state_dict_formats() -> None:
    sd = build_model(ModelConfig()).state_dict()
    assert extract_state_dict({"model_state": sd}).keys() == sd.keys()
    assert extract_state_dict({"model": sd}).keys() == sd.keys()
    assert extract_state_dict(dict(sd)).keys() == sd.keys()
    mixed = {("module." + k if i % 2 else k): v for i, (k, v) in enumerate(sd.items())}
    assert extract_state_dict(mixed).keys() == sd.keys()  # stripping keeps unprefixed keys too
    with pytest.raises(CheckpointError, match="both with and without"):
        extract_state_dict({"a": torch.zeros(1), "module.a": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="no model weights"):
        extract_state_dict({"epoch": 3})


def test_pretrain_roundtrip_and_margin_none_to_cosface(tmp_path: Path) -> None:
    torch.manual_seed(0)
    src = build_model(ModelConfig(margin_method=MarginMethod.NONE))
    path = _save(
        {"model_state": src.state_dict(), "model_config": src.config.to_dict(), "format_version": 1},
        tmp_path / "none.pt",
    )
    dst = build_model(ModelConfig(margin_method=MarginMethod.COSFACE))
    report = load_pretrain(dst, path)
    assert report.missing == ["margin_head.weight"]
    assert report.unexpected == [] and report.mismatched == []
    assert len(report.loaded) == 61 and report.source_format == "ocec-jobs"
    assert any("margin_method" in note for note in report.notes)
    assert torch.equal(dst.stem[0].weight, src.stem[0].weight)
    assert PretrainReport(**report.to_dict()).to_dict() == report.to_dict()


def test_shape_mismatch_is_named(tmp_path: Path) -> None:
    src = build_model(ModelConfig(base_channels=16))
    path = _save({"model": src.state_dict()}, tmp_path / "narrow.pt")
    dst = build_model(ModelConfig())
    before = dst.stem[0].weight.clone()
    with pytest.raises(PretrainMismatchError) as info:
        load_pretrain(dst, path)
    message = str(info.value)
    assert (
        "narrow.pt" in message and "stem.0.weight: checkpoint [16, 3, 3, 3] vs model [32, 3, 3, 3]" in message
    )
    assert torch.equal(dst.stem[0].weight, before)  # nothing loaded on refusal
    report = load_pretrain(dst, path, strict_shapes=False)
    names = {m[0] for m in report.mismatched}
    assert "stem.0.weight" in names and "features.3.pointwise.0.weight" in names
    assert set(report.loaded) | names | set(report.missing) == set(dst.state_dict())
    assert report.source_format == "model"


def test_unexpected_keys_are_reported(tmp_path: Path) -> None:
    sd = dict(build_model(ModelConfig()).state_dict())
    sd["extra.weight"] = torch.zeros(3)
    del sd["head.2.bias"]
    report = load_pretrain(build_model(ModelConfig()), _save(sd, tmp_path / "sd.pt"))
    assert report.unexpected == ["extra.weight"]
    assert report.missing == ["head.2.bias"]
    assert report.source_format == "state_dict"


def test_unsupported_architecture_is_refused(tmp_path: Path) -> None:
    cfg = {**ModelConfig().to_dict(), "arch_variant": "convnext"}
    path = _save(
        {"model_state": build_model(ModelConfig()).state_dict(), "model_config": cfg}, tmp_path / "c.pt"
    )
    with pytest.raises(CheckpointError, match="arch_variant"):
        load_pretrain(build_model(ModelConfig()), path)
    with pytest.raises(CheckpointError, match=r"c\.pt"):
        model_config_from_checkpoint(read_checkpoint(path), path=str(path))
