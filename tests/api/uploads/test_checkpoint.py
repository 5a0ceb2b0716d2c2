"""The torch zip container around the pickle: layout, storages, weights."""

from __future__ import annotations

import io
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import pytest
import torch

from api.uploads.checkpoint import CheckpointRejectedError, Rejection, check_checkpoint

REFERENCE = Path("/work/shared/fixtures/ocec_reference")


def saved(tmp_path: Path, obj: Any, name: str = "model.pt", **kwargs: Any) -> Path:
    path = tmp_path / name
    torch.save(obj, path, **kwargs)
    return path


def rewritten(source: Path, target: Path, change: dict[str, bytes | None]) -> Path:
    """A copy of the archive with records replaced (bytes) or dropped (None), by name suffix."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            match = next((k for k in change if info.filename.endswith(k)), None)
            if match is None:
                new.writestr(info, old.read(info))
            elif change[match] is not None:
                new.writestr(info, change[match])
    return target


@pytest.mark.parametrize("path", sorted(REFERENCE.glob("*.pt")), ids=lambda p: p.name)
def test_real_ocec_checkpoints_are_accepted(path: Path) -> None:
    report = check_checkpoint(path)
    assert report.format == "ocec" and report.epoch == 12
    assert report.tensors in (61, 62) and report.model_config["margin_method"] in ("none", "cosface")


def test_a_state_dict_and_a_model_key_are_accepted(tmp_path: Path) -> None:
    net = torch.nn.Linear(3, 2)
    assert check_checkpoint(saved(tmp_path, net.state_dict())).format == "state_dict"
    report = check_checkpoint(saved(tmp_path, {"model": net.state_dict(), "epoch": 3}, "m.pt"))
    assert (report.format, report.tensors, report.elements, report.epoch) == ("model", 2, 8, 3)


def test_module_prefixes_count_as_one_state_dict(tmp_path: Path) -> None:
    state = OrderedDict((f"module.{k}", v) for k, v in torch.nn.Linear(2, 2).state_dict().items())
    assert check_checkpoint(saved(tmp_path, {"model_state": state})).tensors == 2


@pytest.mark.parametrize(
    "obj",
    [{"epoch": 3, "note": "no weights"}, [torch.ones(2)], {"model_state": {"w": "not a tensor"}}],
    ids=["no tensors", "not a dict", "model_state without tensors"],
)
def test_checkpoints_without_weights_are_refused(tmp_path: Path, obj: Any) -> None:
    with pytest.raises(CheckpointRejectedError) as refused:
        check_checkpoint(saved(tmp_path, obj))
    assert refused.value.kind == Rejection.NO_WEIGHTS


def test_non_zip_and_legacy_files_are_refused(tmp_path: Path) -> None:
    text = tmp_path / "x.pt"
    text.write_text("hello")
    legacy = saved(tmp_path, {"w": torch.ones(2)}, "legacy.pt", _use_new_zipfile_serialization=False)
    for path in (text, legacy):
        with pytest.raises(CheckpointRejectedError) as refused:
            check_checkpoint(path)
        assert refused.value.kind == Rejection.NOT_ZIP


def test_a_missing_or_short_storage_record_is_refused(tmp_path: Path) -> None:
    good = saved(tmp_path, {"w": torch.ones(4)})
    for change in ({"/data/0": None}, {"/data/0": b"\x00" * 3}):
        with pytest.raises(CheckpointRejectedError, match="storage data/0"):
            check_checkpoint(rewritten(good, tmp_path / "bad.pt", change))


def test_a_zip_without_data_pkl_or_with_two_folders_is_refused(tmp_path: Path) -> None:
    good = saved(tmp_path, {"w": torch.ones(4)})
    with pytest.raises(CheckpointRejectedError, match=r"data\.pkl"):
        check_checkpoint(rewritten(good, tmp_path / "a.pt", {"/data.pkl": None}))
    two = tmp_path / "two.pt"
    with zipfile.ZipFile(two, "w") as archive:
        archive.writestr("a/data.pkl", b"\x80\x02}q\x00.")
        archive.writestr("b/data.pkl", b"\x80\x02}q\x00.")
    with pytest.raises(CheckpointRejectedError, match="one top folder"):
        check_checkpoint(two)


def test_a_torchscript_archive_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), path)
    with pytest.raises(CheckpointRejectedError) as refused:
        check_checkpoint(path)
    assert refused.value.kind in (Rejection.LAYOUT, Rejection.UNSAFE)


def test_an_unsafe_pickle_inside_a_real_archive_is_refused(tmp_path: Path) -> None:
    good = saved(tmp_path, {"w": torch.ones(4)})
    hostile = b"\x80\x02cposix\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03."
    with pytest.raises(CheckpointRejectedError) as refused:
        check_checkpoint(rewritten(good, tmp_path / "evil.pt", {"/data.pkl": hostile}))
    assert refused.value.kind == Rejection.UNSAFE and "posix.system" in str(refused.value)


def test_a_checkpoint_archive_in_memory_matches_torch_load(tmp_path: Path) -> None:
    """The reference checkpoint loads with weights_only=True and its tensor count matches the report."""
    path = REFERENCE / "ocec_ref_cosface_epoch0012.pt"
    loaded = torch.load(io.BytesIO(path.read_bytes()), weights_only=True)
    report = check_checkpoint(path)
    assert report.tensors == len(loaded["model_state"])
    assert report.elements == sum(t.numel() for t in loaded["model_state"].values())
