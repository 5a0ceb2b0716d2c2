"""Shared engine-test fixtures: tiny synthetic datasets (built once per session), OCEC reference files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ocec_engine.synthetic import make_dataset
from tests.ocec_engine.folder_data import explode

_REPO = Path(__file__).resolve().parents[2]


def _reference_dir() -> Path | None:
    candidates = [
        os.environ.get("OCEC_REFERENCE_FIXTURES", ""),
        _REPO / "shared" / "fixtures" / "ocec_reference",
        _REPO.parent / "shared" / "fixtures" / "ocec_reference",
    ]
    for c in candidates:
        if c and (Path(c) / "dataset.parquet").is_file():
            return Path(c)
    return None


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """The real OCEC artefacts (shared/fixtures/ocec_reference); skipped where they are absent."""
    found = _reference_dir()
    if found is None:
        pytest.skip("OCEC reference fixtures not found (set OCEC_REFERENCE_FIXTURES)")
    return found


@pytest.fixture(scope="session")
def tiny_parquet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """120 domain-A crops (90 train, 30 val, balanced) as an OCEC dataset.parquet."""
    return make_dataset(tmp_path_factory.mktemp("tiny_a"), domain="A", n=120, seed=3)


@pytest.fixture(scope="session")
def tiny_parquet_b(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("tiny_b"), domain="B", n=120, seed=3)


@pytest.fixture(scope="session")
def folder_dataset(tiny_parquet: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """train/, val/ and test/ (every 5th image) folders of open/closed crops."""
    return explode(tiny_parquet, tmp_path_factory.mktemp("folders") / "ds", test_every=5)
