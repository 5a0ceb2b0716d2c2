"""File names the engine gives what it writes, which the API serves, the upload store writes and the
CLI downloads. The engine keeps its own spelling (it may not import jobstore);
tests/jobstore/test_artifacts.py fails when the two drift apart."""

from __future__ import annotations

BEST_PT, LAST_PT, BEST_ONNX = "best.pt", "last.pt", "best.onnx"  # in a job's run folder
ALIASES = (BEST_PT, LAST_PT, BEST_ONNX)  # downloadable by these names
PARQUET_NAME = "dataset.parquet"  # the engine's name for a one-file parquet dataset
