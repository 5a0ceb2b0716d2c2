"""A real ``ocec-jobs up`` for tests that act as a user: a free port, a temporary home, its admin key.

The environment is the user's, less anything that would point the embedded setup elsewhere
(``DATABASE_URL``, ``REDIS_URL``, ``OCEC_URL`` …), with this interpreter's bin folder first on PATH
(where ``ocec-jobs`` and ``python -m ocec_engine`` are, as after ``. .venv/bin/activate``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.ocec_jobs.test_up import DISTRIBUTED_ENV, free_port, stop_group, wait_ready

USER_ENV = (*DISTRIBUTED_ENV, "OCEC_URL", "OCEC_API_KEY")  # never inherited from whoever runs the tests
ADMIN_KEY = re.compile(r"^\s*admin key\s+(ocec_\S+)", re.MULTILINE)
# Commands reach a running job within a heartbeat: 2 s instead of 10 s keeps these tests short.
FAST_COMMANDS = {"OCEC_HEARTBEAT_SECONDS": "2", "OCEC_LEASE_SECONDS": "10"}


@dataclass(frozen=True)
class Server:
    url: str
    key: str  # the admin key `up` printed on its first start
    home: Path
    log: Path


def user_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in USER_ENV}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@contextmanager
def running_up(folder: Path, extra_env: Mapping[str, str] = FAST_COMMANDS) -> Iterator[Server]:
    """``ocec-jobs up --home <folder>/home --port <free> --device cpu``, stopped (whole group) after."""
    port = free_port()
    log = folder / "up.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            ["ocec-jobs", "up", "--home", str(folder / "home"), "--port", str(port), "--device", "cpu"],
            env=user_env() | dict(extra_env),
            cwd=folder,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_ready(url, process)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{log.read_text()}") from exc
        found = ADMIN_KEY.search(log.read_text())
        assert found, f"ocec-jobs up printed no admin key on its first start:\n{log.read_text()}"
        yield Server(url, found.group(1), folder / "home", log)
    finally:
        stop_group(process)
