"""Dataset uploads: OCEC parquet and zips of open/ and closed/ folders, checked as the engine reads them."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from api.uploads.datasets import DatasetLimits, DatasetRejectedError, Rejection
from api.uploads.parquet_data import check_parquet
from api.uploads.zip_data import check_zip
from tests.api.uploads.data_files import (
    REFERENCE_PARQUET,
    balanced_rows,
    folder_entries,
    parquet,
    png,
    zip_of,
)

LIMITS = DatasetLimits(max_files=1000, max_extracted_bytes=10 << 20, max_image_pixels=512 * 512)


def refused(kind: str, call: object, *args: object) -> str:
    with pytest.raises(DatasetRejectedError) as error:
        call(*args)  # type: ignore[operator]
    assert error.value.kind == kind, str(error.value)
    return str(error.value)


# ---- parquet -------------------------------------------------------------------------------------
def test_the_reference_ocec_parquet_is_accepted() -> None:
    report = check_parquet(REFERENCE_PARQUET, LIMITS)
    assert report.format == "parquet" and report.images == 800
    assert report.counts == {"train": {"closed": 300, "open": 300}, "val": {"closed": 100, "open": 100}}


def test_labels_by_text_split_aliases_and_test_rows(tmp_path: Path) -> None:
    rows = [("training", None, png()), ("valid", None, png()), ("dev", None, png()), ("train", None, png())]
    rows += [("test", None, png())]
    path = parquet(tmp_path / "d.parquet", rows, label=["open", "closed", "open", "Closed", "open"])
    report = check_parquet(path, LIMITS)
    assert report.counts == {"train": {"closed": 1, "open": 1}, "val": {"closed": 1, "open": 1}}
    assert report.ignored == {"split 'test'": 1}


def test_missing_columns_are_named(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"split": ["train"], "image": [b"x"]}), path)
    message = refused(Rejection.COLUMNS, check_parquet, path, LIMITS)
    assert "image_bytes" in message


@pytest.mark.parametrize(
    ("rows", "kind", "words"),
    [
        (
            [("train", 1, png()), ("train", 0, png()), ("val", 1, png()), ("val", 1, png())],
            Rejection.CLASSES,
            "closed",
        ),
        ([("train", 1, png()), ("train", 0, png())], Rejection.CLASSES, "no rows in split 'val'"),
        ([("train", 2, png())] * 2, Rejection.LABELS, "class_id 2"),
        ([*balanced_rows(2)[:-1], ("val", 1, b"not a png")], Rejection.IMAGE, "cannot decode"),
        ([*balanced_rows(2)[:-1], ("val", 1, None)], Rejection.IMAGE, "no image bytes"),
    ],
    ids=["one class in val", "no val split", "bad class id", "undecodable image", "missing image"],
)
def test_unusable_parquet_is_refused(tmp_path: Path, rows: list, kind: str, words: str) -> None:  # type: ignore[type-arg]
    assert words in refused(kind, check_parquet, parquet(tmp_path / "d.parquet", rows), LIMITS)


def test_a_file_that_is_not_parquet_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    path.write_bytes(b"PAR1 but nothing else")
    refused(Rejection.FORMAT, check_parquet, path, LIMITS)


def test_a_huge_image_is_refused_before_decoding(tmp_path: Path) -> None:
    rows = [*balanced_rows(2)[:-1], ("val", 1, png(size=(1024, 1024)))]
    assert "over the limit" in refused(
        Rejection.LIMIT, check_parquet, parquet(tmp_path / "d.parquet", rows), LIMITS
    )


def png_header(width: int, height: int) -> bytes:
    """A PNG that only declares its size: enough for Pillow to open (and judge) it, nothing to decode."""
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", 13) + ihdr + struct.pack(">I", zlib.crc32(ihdr))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk + struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    )


def test_an_image_over_pillows_own_cap_is_a_limit_too(tmp_path: Path) -> None:
    """Over ~179 megapixels Pillow refuses in ``open()``, before our own check: still ``dataset_limit``."""
    limits = DatasetLimits(max_files=1000, max_extracted_bytes=10 << 20, max_image_pixels=1 << 30)
    rows = [*balanced_rows(2)[:-1], ("val", 1, png_header(20_000, 10_000))]

    assert "decompression bomb" in refused(
        Rejection.LIMIT, check_parquet, parquet(tmp_path / "d.parquet", rows), limits
    )


def test_too_many_rows_are_refused(tmp_path: Path) -> None:
    small = DatasetLimits(max_files=3, max_extracted_bytes=1 << 20, max_image_pixels=1 << 20)
    refused(Rejection.LIMIT, check_parquet, parquet(tmp_path / "d.parquet", balanced_rows(2)), small)


# ---- zip ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("entries", "layout", "counts"),
    [
        (folder_entries(), "{open,closed}", {"all": {"closed": 3, "open": 3}}),
        (folder_entries("mydata"), "{open,closed}", {"all": {"closed": 3, "open": 3}}),
        (
            folder_entries(splits=("train", "val"), per_class=1),
            "{train,val}/{open,closed}",
            {"train": {"closed": 1, "open": 1}, "val": {"closed": 1, "open": 1}},
        ),
    ],
    ids=["flat", "inside a top folder", "with splits"],
)
def test_zips_of_folders_are_extracted(tmp_path: Path, entries: dict, layout: str, counts: dict) -> None:  # type: ignore[type-arg]
    extras = {"README.txt": b"hi", "__MACOSX/open/._x.png": b"junk", "open/.DS_Store": b"junk"}
    if "mydata/open/open_0.png" in entries:
        extras = {f"mydata/{k}": v for k, v in extras.items()}
    report = check_zip(zip_of(tmp_path / "d.zip", {**entries, **extras}), tmp_path / "out", LIMITS)
    assert (report.layout, report.counts) == (layout, counts)
    extracted = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.png"))
    assert len(extracted) == report.images and not any(
        p.startswith(("mydata", "__MACOSX")) for p in extracted
    )
    assert report.ignored["not an image"] == 1 and report.ignored["hidden"] == 2


@pytest.mark.parametrize(
    "name",
    ["../evil.png", "open/../../evil.png", "/etc/evil.png", "C:/evil.png", "open\\..\\evil.png"],
)
def test_zip_slip_names_are_refused_before_anything_is_written(tmp_path: Path, name: str) -> None:
    archive = zip_of(tmp_path / "d.zip", {**folder_entries(), name: png()})
    refused(Rejection.UNSAFE, check_zip, archive, tmp_path / "out", LIMITS)
    assert not (tmp_path / "out").exists() and not (tmp_path / "evil.png").exists()


def test_symlink_entries_are_refused(tmp_path: Path) -> None:
    archive = zip_of(tmp_path / "d.zip", folder_entries(), symlinks=["open/link.png"])
    assert "symbolic link" in refused(Rejection.UNSAFE, check_zip, archive, tmp_path / "out", LIMITS)


def test_a_zip_bomb_is_refused_by_its_ratio(tmp_path: Path) -> None:
    archive = zip_of(tmp_path / "d.zip", {**folder_entries(), "open/bomb.png": b"\x00" * (8 << 20)})
    assert "ratio" in refused(Rejection.UNSAFE, check_zip, archive, tmp_path / "out", LIMITS)


def test_size_and_count_limits(tmp_path: Path) -> None:
    archive = zip_of(tmp_path / "d.zip", folder_entries())
    few = DatasetLimits(max_files=3, max_extracted_bytes=1 << 20, max_image_pixels=1 << 20)
    refused(Rejection.LIMIT, check_zip, archive, tmp_path / "a", few)
    tiny = DatasetLimits(max_files=100, max_extracted_bytes=100, max_image_pixels=1 << 20)
    refused(Rejection.LIMIT, check_zip, archive, tmp_path / "b", tiny)


@pytest.mark.parametrize(
    ("entries", "kind"),
    [
        ({k: v for k, v in folder_entries().items() if k.startswith("open")}, Rejection.CLASSES),
        (
            {"open/a.png": png(), "closed/a.png": png(), "closed/b.png": png(), "open/b.png": png()}
            | {"open/c.png": b"?"},
            Rejection.IMAGE,
        ),
        ({"images/a.png": png(), "images/b.png": png()}, Rejection.FORMAT),
        ({"open/a.png": png(), "closed/a.png": png()}, Rejection.CLASSES),
    ],
    ids=["one class", "undecodable image", "no class folders", "one image per class"],
)
def test_unusable_zips_are_refused(tmp_path: Path, entries: dict, kind: str) -> None:  # type: ignore[type-arg]
    refused(kind, check_zip, zip_of(tmp_path / "d.zip", entries), tmp_path / "out", LIMITS)


def test_a_name_twice_is_refused(tmp_path: Path) -> None:
    import zipfile

    archive = zip_of(tmp_path / "d.zip", folder_entries())
    with zipfile.ZipFile(archive, "a") as again:
        again.writestr("open/open_0.png", png(7))
    assert "duplicate" in refused(Rejection.UNSAFE, check_zip, archive, tmp_path / "out", LIMITS)


def test_the_upload_check_accepts_the_image_extensions_the_engine_reads() -> None:
    from api.uploads import datasets
    from ocec_engine.data import folders

    assert datasets.IMAGE_EXTENSIONS == folders.IMAGE_EXTENSIONS
