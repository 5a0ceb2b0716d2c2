"""``ocec-jobs keys …`` and the first admin key of ``ocec-jobs up``: real processes, a real SQLite file."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from jobstore.db import make_engine, read_session, write_transaction
from jobstore.migrate import upgrade_to_head
from jobstore.repo import keys
from jobstore.settings import AuthMode, Settings
from ocec_jobs.cli.keys import ensure_first_admin
from ocec_jobs.cli.up import DEFAULT_HOME, _first_key_note
from tests.ocec_jobs.up_process import DISTRIBUTED_ENV, free_port, stop_group, wait_ready

KEY_LENGTH = len("ocec_") + 43


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    upgrade_to_head(f"sqlite:///{home / 'ocec.db'}")
    return home


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in (*DISTRIBUTED_ENV, "OCEC_AUTH")}


def cli(home: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "ocec_jobs.cli.main", "keys", *argv, "--home", str(home)]
    return subprocess.run(command, env=env(), capture_output=True, text=True, timeout=60, check=False)


def find(home: Path, secret: str) -> keys.ApiKey | None:
    engine = make_engine(f"sqlite:///{home / 'ocec.db'}")
    try:
        with read_session(engine) as session:
            return keys.find_key(session, secret)
    finally:
        engine.dispose()


def test_create_prints_the_key_alone_on_stdout_once(home: Path) -> None:
    created = cli(home, "create", "--name", "ci bot", "--role", "operator")

    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert secret.startswith("ocec_") and len(secret) == KEY_LENGTH and "\n" not in secret
    assert "only time the key is shown" in created.stderr and secret not in created.stderr
    key = find(home, secret)
    assert key is not None and (key.name, key.role) == ("ci bot", "operator")
    assert secret.encode() not in (home / "ocec.db").read_bytes()


def test_list_shows_keys_but_never_the_secret(home: Path) -> None:
    secret = cli(home, "create", "--name", "alice", "--role", "viewer").stdout.strip()

    table = cli(home, "list")
    as_json = cli(home, "list", "--json")

    assert table.returncode == 0 and as_json.returncode == 0
    assert "alice" in table.stdout and "viewer" in table.stdout and secret[:12] in table.stdout
    assert secret not in table.stdout + as_json.stdout
    [row] = json.loads(as_json.stdout)
    assert (row["name"], row["role"], row["revoked"]) == ("alice", "viewer", None)


def test_revoke_by_an_id_prefix(home: Path) -> None:
    secret = cli(home, "create", "--name", "temp", "--role", "operator").stdout.strip()
    key = find(home, secret)
    assert key is not None

    revoked = cli(home, "revoke", key.id[:8])
    again = cli(home, "revoke", key.id)

    assert revoked.returncode == 0 and key.id in revoked.stdout
    assert again.returncode == 0  # idempotent
    assert find(home, secret) is None
    listed = cli(home, "list", "--json").stdout
    assert '"revoked": null' not in listed


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (("revoke", "0123456789abcdef"), 1, "matches no key"),
        (("create", "--name", "x", "--role", "root"), 2, "invalid choice"),
        (("create", "--name", "bad\tname", "--role", "viewer"), 2, "control characters"),
    ],
)
def test_errors_have_exit_codes_and_messages(
    home: Path, argv: tuple[str, ...], code: int, message: str
) -> None:
    result = cli(home, *argv)

    assert result.returncode == code
    assert message in result.stderr
    assert result.stdout == ""


def test_the_last_admin_key_is_not_revoked(home: Path) -> None:
    engine = make_engine(f"sqlite:///{home / 'ocec.db'}")
    with write_transaction(engine) as session:
        boss = keys.create_key(session, name="boss", role=keys.Role.ADMIN)
    engine.dispose()

    refused = cli(home, "revoke", boss.record.id)

    assert refused.returncode == 1 and "last active admin key" in refused.stderr
    assert find(home, boss.secret) is not None  # still active


def test_a_database_without_the_schema_is_refused(tmp_path: Path) -> None:
    result = cli(tmp_path / "fresh", "create", "--name", "x", "--role", "admin")

    assert result.returncode == 1
    assert "ocec-jobs up" in result.stderr and result.stdout == ""


def test_the_first_admin_key_is_made_once(home: Path) -> None:
    settings = Settings(home=home, database_url=f"sqlite:///{home / 'ocec.db'}")

    first = _first_key_note(settings)
    second = _first_key_note(settings)

    secret = first[0].split()[-1]
    key = find(home, secret)
    assert key is not None and (key.name, key.role) == ("admin", "admin")
    assert not any("ocec_" in line for line in second)
    assert "1 active" in second[0]
    assert second[-1].split() == ["ocec-jobs", "keys", "create", "--role", "admin", "--home", str(home)]
    assert ensure_first_admin(settings) is None


def test_a_later_start_names_a_command_that_makes_an_admin_key_on_the_default_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedded default (``./.ocec-jobs``), the server stopped: the printed command works as is."""
    home = tmp_path / DEFAULT_HOME
    settings = Settings(home=home, database_url=f"sqlite:///{home / 'ocec.db'}")
    upgrade_to_head(settings.database_url)
    ensure_first_admin(settings)
    monkeypatch.chdir(tmp_path)

    command = _first_key_note(settings)[-1].strip()
    made = subprocess.run(
        [sys.executable, "-m", "ocec_jobs.cli.main", *shlex.split(command)[1:]],
        cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert command == "ocec-jobs keys create --role admin"
    assert made.returncode == 0, made.stderr
    key = find(home, made.stdout.strip())
    assert key is not None and (key.role, key.name) == ("admin", "admin")


def test_no_first_key_when_auth_is_off(home: Path) -> None:
    settings = Settings(home=home, database_url=f"sqlite:///{home / 'ocec.db'}", auth=AuthMode.OFF)

    note = _first_key_note(settings)

    assert "OFF" in note[0]
    assert ensure_first_admin(settings.model_copy(update={"auth": AuthMode.ON})) is not None  # none before


class Output:
    """Collects a process's stdout lines while it runs."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert proc.stdout is not None
        self.thread = threading.Thread(target=self._read, args=(proc.stdout,), daemon=True)
        self.thread.start()

    def _read(self, stream: Iterator[str]) -> None:
        for line in stream:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [line for line in self.lines if text in line]
            if found:
                return found[0]
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not printed:\n{''.join(self.lines)}")


@pytest.mark.slow
def test_up_prints_a_working_admin_key_on_first_start(tmp_path: Path) -> None:
    home, port = tmp_path / "home", free_port()
    argv = [sys.executable, "-m", "ocec_jobs.cli.main", "up", "--home", str(home), "--port", str(port)]
    proc = subprocess.Popen(
        [*argv, "--no-worker"], env=env(), cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    output = Output(proc)
    base = f"http://127.0.0.1:{port}"
    try:
        secret = output.wait_for("admin key").split()[-1]
        wait_ready(base, proc)
        anonymous = httpx.get(f"{base}/jobs", timeout=10)
        with_key = httpx.get(f"{base}/jobs", headers={"Authorization": f"Bearer {secret}"}, timeout=10)
        me = httpx.get(f"{base}/session/me", headers={"Authorization": f"Bearer {secret}"}, timeout=10)
        signed_in = httpx.post(f"{base}/session", json={"key": secret}, timeout=10)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        stop_group(proc)

    assert secret.startswith("ocec_") and len(secret) == KEY_LENGTH
    assert anonymous.status_code == 401
    assert with_key.status_code == 200
    assert (me.json()["role"], me.json()["name"]) == ("admin", "admin")
    assert sum(secret in line for line in output.lines) == 1, "printed once"
    assert signed_in.status_code == 200 and "ocec_session" in signed_in.headers["set-cookie"]
    assert (home / "session_secret").stat().st_mode & 0o777 == 0o600
