"""Confined paths: every way out of a root is refused with 422 naming the field (api.paths), and
artifact downloads never leave the runs root — including symlinks and encoded tricks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.errors import ApiError
from api.paths import PathError, PathKind, confine, inside
from api.settings import ApiSettings
from jobstore.kinds import CheckpointKind
from tests.api.worker_sim import SimWorker


@pytest.fixture
def roots(tmp_path: Path) -> tuple[Path, Path]:
    """A data root with a dataset and a model file, and a directory beside it with a secret."""
    root = tmp_path / "root"
    (root / "set" / "train").mkdir(parents=True)
    (root / "model.pt").write_bytes(b"w")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.pt").write_bytes(b"s")
    return root, outside


def refused(root: Path, value: str, kind: PathKind = PathKind.DIRECTORY, field: str = "data_root") -> str:
    with pytest.raises(ApiError) as caught:
        confine(root, value, field=field, kind=kind)
    error = caught.value
    assert error.status == 422
    [entry] = error.extra["errors"]
    assert entry["field"] == field
    return str(entry["type"])


@pytest.mark.parametrize(
    "value",
    ["..", "../outside", "set/../../outside", "set/train/../../..", "./../outside", "set/..", "../root/set"],
)
def test_dot_dot_is_refused_anywhere(roots: tuple[Path, Path], value: str) -> None:
    assert refused(roots[0], value) == PathError.OUTSIDE


def test_absolute_paths_outside_are_refused_and_inside_are_made_relative(roots: tuple[Path, Path]) -> None:
    root, outside = roots

    assert refused(root, str(outside)) == PathError.OUTSIDE
    assert refused(root, "/etc") == PathError.OUTSIDE
    assert refused(root, "//etc") == PathError.OUTSIDE
    assert refused(root, str(root.parent)) == PathError.OUTSIDE
    assert confine(root, str(root / "set"), field="data_root", kind=PathKind.DIRECTORY) == "set"


def test_symlinks_that_leave_the_root_are_refused(roots: tuple[Path, Path]) -> None:
    root, outside = roots
    (root / "out_dir").symlink_to(outside)
    (root / "out_file.pt").symlink_to(outside / "secret.pt")
    (root / "hop").symlink_to(root / "out_dir")  # a link to a link that leaves
    (root / "set" / "up").symlink_to(Path("..") / "..")  # relative link climbing out

    assert refused(root, "out_dir") == PathError.OUTSIDE
    assert refused(root, "hop") == PathError.OUTSIDE
    assert refused(root, "set/up") == PathError.OUTSIDE
    assert refused(root, "out_file.pt", PathKind.FILE, "pretrain") == PathError.OUTSIDE
    assert refused(root, "out_dir/secret.pt", PathKind.FILE, "pretrain") == PathError.OUTSIDE


def test_symlinks_that_stay_inside_are_accepted(roots: tuple[Path, Path]) -> None:
    root, _ = roots
    (root / "current").symlink_to(root / "set")

    assert confine(root, "current", field="data_root", kind=PathKind.DIRECTORY) == "current"


def test_a_root_that_is_itself_a_link_works(roots: tuple[Path, Path], tmp_path: Path) -> None:
    root, _ = roots
    (tmp_path / "alias").symlink_to(root)

    assert confine(tmp_path / "alias", "set", field="data_root", kind=PathKind.DIRECTORY) == "set"


@pytest.mark.parametrize(
    "value",
    ["%2e%2e/outside", "..%2foutside", "%2e%2e%2f%2e%2e%2fetc", "..\\..\\outside", "\uff0e\uff0e/outside",
     "\u2025/outside", "~/outside", "~root"],
)  # fmt: skip
def test_encoded_and_lookalike_tricks_are_plain_names_that_do_not_exist(
    roots: tuple[Path, Path], value: str
) -> None:
    assert refused(roots[0], value) == PathError.MISSING


def test_the_wrong_kind_of_file_is_refused(roots: tuple[Path, Path]) -> None:
    root, _ = roots
    os.mkfifo(root / "pipe.pt")  # torch.load would block on it forever

    assert refused(root, "pipe.pt", PathKind.FILE, "pretrain") == PathError.WRONG_KIND
    assert refused(root, "set", PathKind.FILE, "pretrain") == PathError.WRONG_KIND
    assert refused(root, "model.pt") == PathError.WRONG_KIND


def test_paths_the_file_system_refuses_are_invalid_not_errors(roots: tuple[Path, Path]) -> None:
    root, _ = roots
    (root / "loop_a").symlink_to(root / "loop_b")
    (root / "loop_b").symlink_to(root / "loop_a")

    assert refused(root, "x" * 300) == PathError.INVALID
    assert refused(root, "set/\x00/etc") == PathError.INVALID
    assert refused(root, "loop_a") == PathError.INVALID


def test_inside_serves_only_regular_files_under_the_root(roots: tuple[Path, Path]) -> None:
    root, outside = roots
    (root / "link.pt").symlink_to(outside / "secret.pt")

    assert inside(root, "model.pt") == (root / "model.pt").resolve()
    (root / "loop_a").symlink_to(root / "loop_b")
    (root / "loop_b").symlink_to(root / "loop_a")
    escapes = ("../outside/secret.pt", str(outside / "secret.pt"), "link.pt", "set", "missing.pt", "a\x00b")
    escapes += ("loop_a",)
    for name in escapes:
        assert inside(root, name) is None, name


def test_artifact_downloads_refuse_traversal_in_the_url(
    client: TestClient, engine: Engine, api_settings: ApiSettings, job_body: dict[str, Any]
) -> None:
    secret = api_settings.home / "secret.txt"
    secret.write_text("do not serve")
    worker = SimWorker(engine, client.post("/jobs", json=job_body).json()["id"])
    worker.claim()
    (api_settings.runs_root / worker.job_id).mkdir()
    (api_settings.runs_root / worker.job_id / "escape.pt").symlink_to(secret)
    worker.checkpoint(f"{worker.job_id}/escape.pt", CheckpointKind.LAST, epoch=1)
    base = f"/jobs/{worker.job_id}/artifacts"

    answers = [
        client.get(f"{base}/..%2F..%2Fsecret.txt"),
        client.get(f"{base}/%2e%2e/%2e%2e/secret.txt"),
        client.get(f"{base}/{secret}"),
        client.get(f"{base}/{worker.job_id}/escape.pt"),  # a recorded path that is a link out
        client.get(f"{base}/last.pt"),
    ]

    for response in answers:
        assert response.status_code == 404, response.request.url
        assert b"do not serve" not in response.content


def test_a_loop_of_links_is_a_422_not_a_500(
    client: TestClient, api_settings: ApiSettings, job_body: dict[str, Any]
) -> None:
    (api_settings.data_root / "loop_a").symlink_to(api_settings.data_root / "loop_b")
    (api_settings.data_root / "loop_b").symlink_to(api_settings.data_root / "loop_a")

    response = client.post("/jobs", json={**job_body, "data_root": "loop_a"})

    assert response.status_code == 422
    assert response.json()["errors"][0] | {"message": ""} == {
        "field": "data_root", "location": "body", "message": "", "type": "path_invalid",
    }  # fmt: skip
