"""``ocec-jobs demo`` as a new user runs it: a real ``ocec-jobs up``, the real engine, HTTP all the way.

One full ``--embedded`` run (about a minute on two CPU cores): data A and B, model A, uploads, a
progressive job whose stage-1 -> 2 transition is printed live, a summary, the downloads, and the
embedded server gone after. Then the same work folder against a server that is already running
(``OCEC_URL`` / ``OCEC_API_KEY``): data and model A are reused, the job runs again.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.ocec_jobs.up_server import running_up, user_env
from tests.process_leaks import alive


def demo(
    *argv: str, cwd: Path, timeout: float = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "ocec_jobs.cli.main", "demo", *argv]
    return subprocess.run(
        command, env=user_env() | (env or {}), cwd=cwd, capture_output=True, text=True, timeout=timeout,
        check=False,
    )  # fmt: skip


@dataclass(frozen=True)
class Run:
    work: Path
    done: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Run:
    tmp = tmp_path_factory.mktemp("demo")
    work = tmp / "demo"
    return Run(work, demo("--embedded", "--workdir", str(work), "--no-progress", cwd=tmp))


def assert_job_followed_live(out: str) -> None:
    epochs = [line.split(" | ")[0] for line in out.splitlines() if line.startswith("epoch ")]
    assert epochs == [f"epoch {e}/8 stage {1 if e < 4 else 2}" for e in range(1, 9)]  # live, one per epoch
    live = (
        out.index("epoch 3/8 stage 1"),
        out.index("stage 1 -> 2 at epoch 4"),
        out.index("epoch 4/8 stage 2"),
    )
    assert live == tuple(sorted(live)), "the transition is printed between the epochs, as it happens"
    assert "gate to stage 2 before epoch 4" in out
    assert "succeeded: epoch budget reached (8 epochs)" in out
    assert "best val F1 0." in out and "/ui/jobs/" in out


@pytest.mark.slow
def test_embedded_demo_runs_a_progressive_job_to_the_end(embedded: Run) -> None:
    out = embedded.done.stdout

    assert embedded.done.returncode == 0, f"{out}\n{embedded.done.stderr}"
    assert "admin key  ocec_" in out
    assert_job_followed_live(out)
    for name in ("best.pt", "best.onnx"):
        assert (embedded.work / f"demo-progressive-{name}").stat().st_size > 1000
    assert "the embedded server has stopped" in out
    assert (embedded.work / "home" / "ocec.db").is_file()  # the home stays for `ocec-jobs up --home`


@pytest.mark.slow
def test_against_a_running_server_with_the_work_of_an_earlier_run(embedded: Run, tmp_path: Path) -> None:
    with running_up(tmp_path) as server:
        keyless = demo("--url", server.url, cwd=tmp_path, timeout=60)
        done = demo(
            "--workdir", str(embedded.work), "--no-progress", cwd=tmp_path,
            env={"OCEC_URL": server.url, "OCEC_API_KEY": server.key},
        )  # fmt: skip
    out = done.stdout

    assert keyless.returncode == 4, keyless.stderr
    assert keyless.stderr.startswith("ocec-jobs: the demo needs an operator key")
    assert "--embedded" in keyless.stderr
    assert done.returncode == 0, f"{out}\n{done.stderr}"
    assert f"== server {server.url}" in out and "admin key" not in out
    assert "dataset.parquet (from an earlier run)" in out and "best.pt (from an earlier run)" in out
    assert_job_followed_live(out)
    assert "embedded server" not in out


def test_an_unreachable_server_is_exit_3(tmp_path: Path) -> None:
    done = demo("--url", "http://127.0.0.1:9", "--key", "ocec_x", cwd=tmp_path, timeout=60)

    assert done.returncode == 3
    assert "cannot reach the ocec-jobs server at http://127.0.0.1:9" in done.stderr


def test_embedded_server_tree_is_gone_after_a_failure(tmp_path: Path) -> None:
    """A demo that fails before its job (no engine on PATH's python is hard to fake; a taken port is
    not): ``up`` cannot bind, the demo says where its log is and leaves no process behind."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = demo("--embedded", "--port", str(port), "--workdir", str(tmp_path / "w"), cwd=tmp_path)

    assert done.returncode == 6, done.stderr
    assert "ocec-jobs up exited: see" in done.stderr
    # orphans are re-parented away from us: look for anything that still knows the demo's workdir
    assert [pid for pid in mentioning(str(tmp_path / "w")) if alive(pid)] == []


def mentioning(text: str) -> list[int]:
    """Processes whose command line or environment contains ``text`` (ours are excluded)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            blob = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
        except OSError:
            continue
        if text.encode() in blob:
            found.append(int(entry.name))
    return found
