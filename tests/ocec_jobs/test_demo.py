"""``ocec-jobs demo`` as a new user runs it: a real ``ocec-jobs up``, the real engine, HTTP all the way.

One full run (about a minute on two CPU cores): data A and B, model A, uploads, a progressive job whose
stage-1 -> 2 transition is printed live, a summary, the downloads, and the embedded server gone after.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ocec_jobs.test_up import DISTRIBUTED_ENV, alive, descendants

CLIENT_ENV = ("OCEC_URL", "OCEC_API_KEY")


def demo(*argv: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in (*DISTRIBUTED_ENV, *CLIENT_ENV)}
    command = [sys.executable, "-m", "ocec_jobs.cli.main", "demo", *argv]
    return subprocess.run(
        command, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.mark.slow
def test_embedded_demo_runs_a_progressive_job_to_the_end(tmp_path: Path) -> None:
    work = tmp_path / "demo"
    done = demo("--embedded", "--workdir", str(work), "--no-progress", cwd=tmp_path)
    out = done.stdout

    assert done.returncode == 0, f"{out}\n{done.stderr}"
    assert "admin key  ocec_" in out
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
    assert "best val F1 0." in out
    for name in ("best.pt", "best.onnx"):
        assert (work / f"demo-progressive-{name}").stat().st_size > 1000
    assert "/ui/jobs/" in out and "the embedded server has stopped" in out
    assert (work / "home" / "ocec.db").is_file()  # the home stays for `ocec-jobs up --home`


def test_without_a_key_it_says_what_to_do(tmp_path: Path) -> None:
    done = demo("--url", "http://127.0.0.1:9", cwd=tmp_path, timeout=60)

    assert done.returncode == 4
    assert done.stdout == ""
    assert done.stderr.startswith("ocec-jobs: the demo needs an operator key") and "--embedded" in done.stderr


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
        before = descendants(os.getpid())
        done = demo("--embedded", "--port", str(port), "--workdir", str(tmp_path / "w"), cwd=tmp_path)

    assert done.returncode == 6, done.stderr
    assert "ocec-jobs up exited: see" in done.stderr
    assert [pid for pid in descendants(os.getpid()) - before if alive(pid)] == []
