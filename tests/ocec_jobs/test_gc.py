"""``ocec-jobs gc [--dry-run]``: real processes on the embedded default (a SQLite file), no server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jobstore import repo
from jobstore.db import make_engine, write_transaction
from jobstore.migrate import upgrade_to_head
from jobstore.repo.deletion import delete_job
from jobstore.settings import Settings
from jobstore.spec import JobCreate
from ocec_jobs.cli.main import main
from tests.jobstore.runs import finish, train
from tests.ocec_jobs.up_process import DISTRIBUTED_ENV


def gc(home: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "ocec_jobs.cli.main", "gc", *argv, "--home", str(home)]
    env = {k: v for k, v in os.environ.items() if k not in (*DISTRIBUTED_ENV, "OCEC_KEEP_EPOCH_CHECKPOINTS")}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A stopped embedded setup: one finished job of 3 epochs keeping 1, one deleted job whose run
    folder was left behind."""
    home = tmp_path / "home"
    settings = Settings(home=home)
    upgrade_to_head(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        for keep in (1, None):
            with write_transaction(engine) as session:
                job = repo.create_job(
                    session, create=JobCreate(data_root="d", epochs=3, keep_epochs=keep)
                ).job
                repo.claim(session, job_id=job.id, attempt=1, worker="w", pid=1, gpu=None, lease_seconds=30)
            train(settings, engine, job.id, 1, range(1, 4))
            finish(engine, job.id, 1)
        with write_transaction(engine) as session:  # deleted, but its folder could not be removed
            delete_job(session, job.id, actor="op", reason="", disk_bytes=0)
    finally:
        engine.dispose()
    return home


def test_dry_run_lists_what_would_go_and_gc_removes_it(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = home / "runs"
    before = sorted(p for p in runs.rglob("*") if p.is_file())

    dry = gc(home, "--dry-run")

    assert dry.returncode == 0, dry.stderr
    assert sorted(p for p in runs.rglob("*") if p.is_file()) == before  # nothing changed
    lines = dry.stdout.splitlines()
    assert [line.split()[2].split("/", 1)[1] for line in lines[:2]] == [
        "epochs/epoch_0002.pt", "epochs/epoch_0001.pt",
    ]  # fmt: skip
    assert all(line.startswith("would remove ") and "job keeps 1" in line for line in lines[:2])
    assert "job deleted at" in lines[2] and lines[-1].startswith(
        "would remove 2 checkpoint(s) and 1 folder(s)"
    )

    done = gc(home)

    assert done.returncode == 0, done.stderr
    assert done.stdout.replace("removed", "would remove") == dry.stdout
    kept = sorted(p.relative_to(runs).as_posix() for p in runs.rglob("*.pt"))
    assert len(kept) == 4 and all("epoch_0003" in p or "epochs" not in p for p in kept)
    assert main(["gc", "--dry-run", "--home", str(home)]) == 0
    assert capsys.readouterr().out.strip() == "would remove 0 checkpoint(s) and 0 folder(s), 0 B in all"


def test_gc_refuses_a_home_without_a_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["gc", "--dry-run", "--home", str(tmp_path / "nothing-here")])

    assert code == 1 and "ocec-jobs gc: the database has no ocec-jobs schema" in capsys.readouterr().err
