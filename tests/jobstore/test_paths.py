"""The one confinement rule: a path stays inside its root, symlinks followed."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobstore.paths import within


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "root" / "data").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    return tmp_path / "root"


def test_a_relative_path_inside_resolves_under_the_real_root(root: Path) -> None:
    assert within(root, "data") == (root / "data").resolve()
    assert within(root, "not/there/yet") == (root / "not/there/yet").resolve()


@pytest.mark.parametrize("path", ["..", "data/../data", "../outside"])
def test_dot_dot_is_refused_even_when_it_comes_back(root: Path, path: str) -> None:
    assert within(root, path) is None


def test_an_absolute_path_counts_where_it_points_unless_refused(root: Path) -> None:
    inside, outside = str(root / "data"), str(root.parent / "outside")
    assert within(root, inside) == (root / "data").resolve()
    assert within(root, outside) is None
    assert within(root, inside, absolute_ok=False) is None


def test_a_link_that_leaves_the_root_is_refused(root: Path) -> None:
    (root / "escape").symlink_to(root.parent / "outside")
    (root / "alias").symlink_to(root / "data")
    assert within(root, "escape") is None
    assert within(root, "alias") == (root / "data").resolve()
