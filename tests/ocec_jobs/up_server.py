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
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.ocec_jobs.up_process import DISTRIBUTED_ENV, free_port, stop_group, wait_ready

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
    process: subprocess.Popen[str]

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


def user_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in USER_ENV}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def start_up(
    folder: Path,
    extra_env: Mapping[str, str] = FAST_COMMANDS,
    *,
    port: int | None = None,
    key: str | None = None,
    args: Sequence[str] = ("--device", "cpu"),
) -> Server:
    """``ocec-jobs up --home <folder>/home --port <port or a free one> <args>``, once it is ready.

    ``key``: the admin key of an earlier start on this home (only the first start prints one).
    """
    port = port or free_port()
    log = folder / "up.log"
    argv = ["ocec-jobs", "up", "--home", str(folder / "home"), "--port", str(port), *args]
    with log.open("a") as out:
        process = subprocess.Popen(
            argv, env=user_env() | dict(extra_env), cwd=folder, stdout=out, stderr=subprocess.STDOUT,
            text=True, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process)
        found = ADMIN_KEY.search(log.read_text())
        assert key or found, f"ocec-jobs up printed no admin key on its first start:\n{log.read_text()}"
    except BaseException as exc:
        stop_group(process)
        raise AssertionError(f"{exc}\n{log.read_text()}") from exc
    return Server(url, key or (found.group(1) if found else ""), folder / "home", log, process)


@contextmanager
def running_up(
    folder: Path, extra_env: Mapping[str, str] = FAST_COMMANDS, **options: Any
) -> Iterator[Server]:
    """``start_up``, stopped after (SIGTERM, and every process below it waited for)."""
    server = start_up(folder, extra_env, **options)
    try:
        yield server
    finally:
        stop_group(server.process)
