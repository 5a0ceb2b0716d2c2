"""Every command in README.md works: run here exactly as written, or mapped to the test that covers it.

The runnable blocks (``connect``, ``data``, ``curl-flow``, ``cli-flow``) run in bash with
``set -euo pipefail``, in one temporary folder, one after the other as a user pastes them into one
terminal, against a real ``ocec-jobs up`` (API + CPU worker + dashboard, SQLite and the embedded
broker) started on a free port in a temporary ``OCEC_HOME``, with the real engine on the README's
tiny synthetic data. The only edit is in ``connect``: the URL and the key placeholder become this
server's URL and the admin key it printed, exactly what the README tells the user to paste there.
The server runs with a 2 s heartbeat (default 10 s) so commands reach the job sooner; nothing in
the blocks depends on it.

The curl blocks run a second time in the same terminal (a new job), and their helpers are made to
fail: a wrong key, a job that ended, a server that is gone. docs/client.md's Python cells run here
too, against the same server and the README's data.

Blocks that are not run here are mapped, command by command, to the test that runs that command
(``COVERED``); ``test_every_bash_block_is_run_or_mapped`` fails when a bash block has no marker, a
marker is unknown, or a mapped block gains a command the map does not list.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.docs.readme_blocks import REPO, Shell, blocks, marked
from tests.ocec_jobs.up_process import free_port
from tests.ocec_jobs.up_server import Server, running_up, user_env

RUN = ("connect", "data", "curl-flow", "cli-flow")
# README command -> the test that runs it (blocks not run here).
COVERED: dict[str, dict[str, str]] = {
    "install": {
        "bash scripts/install.sh && .venv/bin/ocec-jobs up": ".ci/run (install) + the `server` fixture below "
        "and tests/ocec_jobs/test_up.py (ocec-jobs up)",
        "bash scripts/install.sh --dev && bash scripts/test.sh": ".ci/run (its last line is this command)",
    },
    "demo": {
        ".venv/bin/ocec-jobs demo --embedded": "tests/ocec_jobs/test_demo.py::"
        "test_embedded_demo_runs_a_progressive_job_to_the_end",
    },
    "up": {
        ". .venv/bin/activate": "the `server` fixture (the venv's bin first on PATH)",
        "ocec-jobs up": "the `server` fixture below (ocec-jobs up --home --port --device cpu) and "
        "tests/ocec_jobs/test_up.py::test_up_serves_the_api_and_a_worker_then_stops_them_on_sigterm",
    },
    "distributed": {
        "export DATABASE_URL=postgresql://ocec:secret@db-host/ocec REDIS_URL=redis://redis-host:6379/0": (
            "tests/ocec_jobs/test_migrate.py (DATABASE_URL), tests/faults (PostgreSQL + Redis)"
        ),
        "ocec-jobs migrate": "tests/ocec_jobs/test_migrate.py::test_postgresql_by_database_url",
        "ocec-jobs api --host 0.0.0.0 --port 8000": "tests/faults/test_api_restart.py "
        "(ocec-jobs api subprocesses on PostgreSQL + Redis)",
        "ocec-jobs worker --gpus 0,1": "tests/worker/test_cli_worker.py::"
        "test_two_pinned_workers_run_jobs_side_by_side_and_stop_on_sigterm",
        "ocec-jobs keys create --name alice --role operator": "tests/ocec_jobs/test_keys.py::"
        "test_create_prints_the_key_alone_on_stdout_once",
    },
    "measure-choose": {
        "python -m ocec_engine evaluate model_A/best.pt --data_root data_B --split val --out eval-A-on-B": (
            "tests/ocec_engine/evaluation/test_cli.py::test_evaluate_command_writes_the_report"
        ),
        "ocec-jobs evaluate --model ocec_A_best.pt --data dataset_B --split val --wait": (
            "tests/ocec_jobs/client/test_commands.py::test_evaluate_waits_and_prints_the_summary_or_the_reason"
        ),
        'ocec-jobs submit --name race-B --data-root "$DATA_B" --pretrain "$MODEL_A" --epochs 30 '
        "--unfreeze-backbone-epoch 11 --race": "tests/ocec_jobs/client/test_commands.py::"
        "test_submit_race_then_race_shows_the_leaderboard_and_stops_it",
        'ocec-jobs race "$RACE"': "the same test (the leaderboard)",
        'ocec-jobs race "$RACE" --promote whole-lr1 --reason "best on our camera"': (
            "the same test (--promote; a live race's promotion: tests/api/routes/test_races.py)"
        ),
    },
    "operate": {
        'curl -sS -X DELETE -H "Authorization: Bearer $OCEC_API_KEY" "$OCEC_URL/jobs/$JOB?reason=done"': (
            "tests/api/routes/test_jobs.py::test_a_finished_job_is_pruned_then_deleted_as_a_tombstone"
        ),
        "ocec-jobs gc --dry-run": (
            "tests/ocec_jobs/test_gc.py::test_dry_run_lists_what_would_go_and_gc_removes_it"
        ),
    },
    "compose": {
        "docker compose up -d": "not run (no Docker registry here): "
        "test_docker_compose_runs_the_commands_the_readme_names checks its services and commands",
    },
}
URL_PLACEHOLDER, KEY_PLACEHOLDER = "http://127.0.0.1:8000", "ocec_…"
BLOCK_TIMEOUT_S = 240.0
CLIENT_GUIDE = REPO / "docs" / "client.md"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``ocec-jobs up`` as the README starts it, on a free port in a temporary home."""
    with running_up(tmp_path_factory.mktemp("readme-server")) as running:
        yield running


@pytest.fixture(scope="module")
def shell(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Shell:
    """A terminal after the README's ``connect`` and ``data`` blocks (run once for the module)."""
    work = tmp_path_factory.mktemp("readme-user")
    session = Shell(work, user_env())
    ready = run(session, connect_code(server))
    assert '"database":"ok"' in ready.stdout
    data = run(session, marked("data").code)
    assert re.search(r"pretrain uploads/\w+/best\.pt, data_root uploads/\w+", data.stdout), data.stdout
    return session


def connect_code(server: Server, key: str | None = None) -> str:
    """The ``connect`` block with this server's URL and a key (default: its admin key) pasted in."""
    connect = marked("connect").code
    assert connect.count(URL_PLACEHOLDER) == 1 and connect.count(KEY_PLACEHOLDER) == 1
    return connect.replace(URL_PLACEHOLDER, server.url).replace(KEY_PLACEHOLDER, key or server.key)


def run(session: Shell, code: str) -> subprocess.CompletedProcess[str]:
    done = session.run(code, timeout=BLOCK_TIMEOUT_S)
    print(done.stdout)  # shown with -s / on failure: the real answers the README abbreviates
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n--- stderr\n{done.stderr}"
    return done


def api(server: Server, path: str) -> Any:
    answer = httpx.get(f"{server.url}{path}", headers={"Authorization": f"Bearer {server.key}"}, timeout=10)
    answer.raise_for_status()
    return answer.json()


def job_named(server: Server, name: str) -> Any:
    """The newest job of that name (the curl flow runs twice)."""
    return api(server, f"/jobs?name={name}")["data"][0]


def test_every_bash_block_is_run_or_mapped() -> None:
    bash = [b for b in blocks() if b.lang == "bash"]
    markers = [b.marker for b in bash]

    assert None not in markers, f"bash blocks without a readme-test marker at lines {[b.line for b in bash]}"
    assert sorted(map(str, markers)) == sorted([*RUN, *COVERED]), "every marker is run or mapped, once"
    for block in bash:
        if block.marker in COVERED:
            assert block.commands() == list(COVERED[block.marker]), f"unmapped commands in {block.marker}"


def test_curl_flow_runs_as_written(shell: Shell, server: Server) -> None:
    done = run(shell, marked("curl-flow").code)

    assert done.stdout.strip().splitlines()[-1].startswith("cancel by admin")
    job = job_named(server, "by-hand")
    events = api(server, f"/jobs/{job['id']}/events?limit=500")["data"]
    kinds = [e["kind"] for e in events]
    forced = [e for e in events if e["kind"] == "stage_change" and e["from_stage"] == 1]
    assert job["state"] == "cancelled" and job["attempt"] == 2  # paused, resumed as attempt 2, cancelled
    assert [e["evidence"]["trigger"] for e in forced] == ["forced"] and forced[0]["epoch"] >= 3
    assert "resume_requested" in kinds
    metrics = api(server, f"/jobs/{job['id']}/metrics")["data"]
    assert {m["stage"] for m in metrics if m["epoch"] < forced[0]["epoch"]} == {1}
    assert {m["stage"] for m in metrics if m["epoch"] >= forced[0]["epoch"]} <= {2}
    assert {"paused", "cancelled"} <= {e["to_state"] for e in events if e["kind"] == "state_change"}


def test_the_curl_blocks_run_again_and_their_helpers_stop_loudly(
    shell: Shell, server: Server, tmp_path: Path
) -> None:
    """Pasted a second time, the flow submits a new job (its own Idempotency-Key) and steers it to
    the end; ``wait_for`` stops when the job ended or the server is gone, ``field`` on a wrong key."""
    if not api(server, "/jobs?name=by-hand")["data"]:
        run(shell, marked("curl-flow").code)  # this test alone: the first run
    before = [job["id"] for job in api(server, "/jobs?name=by-hand")["data"]]

    run(shell, connect_code(server))
    run(shell, marked("curl-flow").code)
    ended = shell.run("wait_for state paused", timeout=60)
    gone = shell.run(f"OCEC_URL=http://127.0.0.1:{free_port()}\nwait_for state paused", timeout=60)
    wrong_key = Shell(tmp_path, user_env()).run(
        connect_code(server, key="ocec_not-a-key")
        + 'ID=$(curl -sS -H "Authorization: Bearer $OCEC_API_KEY" "$OCEC_URL/jobs" | field data 0 id)\n'
        + "echo carried on\n",
        timeout=60,
    )

    after = api(server, "/jobs?name=by-hand")["data"]
    assert len(after) == len(before) + 1 and after[0]["id"] not in before
    assert (after[0]["state"], after[0]["attempt"]) == ("cancelled", 2)
    assert ended.returncode == 1 and "wait_for: the job ended cancelled" in ended.stderr
    assert gone.returncode == 1 and "field: no JSON answer" in gone.stderr
    assert wrong_key.returncode == 1 and "carried on" not in wrong_key.stdout
    assert "field: 401" in wrong_key.stderr and "Traceback" not in wrong_key.stderr + gone.stderr


def test_cli_flow_runs_as_written(shell: Shell, server: Server) -> None:
    done = run(shell, marked("cli-flow").code)

    out = done.stdout
    assert "(the same file was uploaded before)" in out
    assert "stage 1 -> 2 at epoch 4" in out and "succeeded: epoch budget reached (8 epochs)" in out
    assert (shell.cwd / "cli-finetune.onnx").stat().st_size > 1000
    job = job_named(server, "cli-finetune")
    assert job["state"] == "succeeded" and job["stage"] == 2
    assert f"{job['id']}  cli-finetune  succeeded  stage 2  epoch 8/8" in out  # the status line


def test_the_client_guide_runs_as_written(shell: Shell, server: Server) -> None:
    """docs/client.md's Python cells, in order, in one interpreter (as a notebook runs them), in the
    folder of the README's data block, with OCEC_URL and OCEC_API_KEY set as its connect block does."""
    cells = [b.code for b in blocks(CLIENT_GUIDE.read_text(encoding="utf-8")) if b.lang == "python"]
    env = user_env() | {"OCEC_URL": server.url, "OCEC_API_KEY": server.key}

    done = subprocess.run(
        [sys.executable, "-c", "\n".join(cells)],
        cwd=shell.cwd, env=env, capture_output=True, text=True, timeout=BLOCK_TIMEOUT_S, check=False,
    )  # fmt: skip

    print(done.stdout)  # the answers docs/client.md shows
    assert done.returncode == 0, done.stderr
    assert len(cells) >= 5 and "end: succeeded" in done.stdout and "stage 1 -> 2 at epoch 3" in done.stdout
    assert done.stdout.splitlines()[-1].startswith("422 ") and "['lr']" in done.stdout
    assert (shell.cwd / "from-python.onnx").stat().st_size > 1000
    job = job_named(server, "from-python")
    assert job["state"] == "succeeded" and job["stage"] == 2


def test_docker_compose_runs_the_commands_the_readme_names() -> None:
    import yaml

    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]

    assert {"postgres", "redis", "migrate", "api", "worker"} <= set(services)
    assert services["migrate"]["command"] == ["ocec-jobs", "migrate"]
    assert services["api"]["ports"] == ["8000:8000"]
    env = compose["x-env"]
    assert env["DATABASE_URL"].startswith("postgresql") and env["REDIS_URL"].startswith("redis://")
    dockerfile = (REPO / "Dockerfile").read_text()
    assert 'CMD ["ocec-jobs", "api", "--host", "0.0.0.0", "--port", "8000"]' in dockerfile
    assert 'CMD ["ocec-jobs", "worker", "--gpus", "all"]' in dockerfile


def test_the_readme_links_resolve() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    targets = {t.split("#")[0] for t in re.findall(r"\]\(((?:docs|\.)[^)\s]*)\)", text)}

    assert targets, "the README links its docs"
    assert [t for t in sorted(targets) if not (REPO / t).exists()] == []
