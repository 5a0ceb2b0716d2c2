"""jobstore's artifact names are the engine's: the API serves and the CLI downloads what it wrote."""

from __future__ import annotations

from pathlib import Path

from jobstore.artifacts import BEST_ONNX, BEST_PT, LAST_PT, PARQUET_NAME
from ocec_engine.checkpoint import Layout
from ocec_engine.data.parquet import find_parquet_files


def test_run_folder_names_match_the_engine_layout(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    assert layout.best.name == BEST_PT
    assert layout.last.name == LAST_PT
    assert layout.onnx_for(layout.best).name == BEST_ONNX


def test_the_engine_reads_the_upload_store_parquet_name_first(tmp_path: Path) -> None:
    for name in ("another.parquet", PARQUET_NAME, "zzz.parquet"):
        (tmp_path / name).write_bytes(b"")
    assert find_parquet_files(tmp_path) == [tmp_path / PARQUET_NAME]
