"""Private service instances for the fault tests: a Redis and a PostgreSQL that only this suite uses.

The shared Redis (6379) and PostgreSQL (5432) serve everyone's tests, so the faults that restart a
broker or a database are injected into instances started here, on free ports, in temp folders:

- ``PrivateRedis``: ``redis-server`` without persistence as a subprocess. ``crash()`` is kill -9
  (its data is gone, as in a real restart without persistence); ``start()`` brings it back on the
  same port.
- ``PrivatePostgres``: ``initdb`` + ``pg_ctl`` of the PostgreSQL 15 binaries, run as user
  ``postgres`` (they refuse root) in a folder it owns, trust auth, unix socket in that folder.
  ``stop()`` is a fast shutdown (sessions are cut, as in a real restart); ``databases`` are cloned
  from a migrated template, so each test gets an empty schema at head in milliseconds.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

PG_BIN = Path(os.environ.get("OCEC_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_USER = "postgres"
TEMPLATE_DB = "ocec_fault_template"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)


class PrivateRedis:
    """A throwaway ``redis-server`` on a free port (no RDB, no AOF: a restart loses everything)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = folder / "redis.log"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        argv = [
            shutil.which("redis-server") or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", str(self.folder),
            "--maxmemory-policy", "noeviction",
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        _wait(self.ping, 20, f"redis on port {self.port}")

    def ping(self) -> bool:
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def crash(self) -> None:
        """kill -9: the server and every key in it are gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        self.crash()


class PrivatePostgres:
    """A PostgreSQL 15 cluster of our own (see the module docstring)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.port = free_port()
        self.log_path = folder / "postgres.log"

    @classmethod
    def available(cls) -> str | None:
        """Why a private cluster cannot run here, or None."""
        if not (PG_BIN / "initdb").exists():
            return f"PostgreSQL binaries not found in {PG_BIN} (set OCEC_TEST_PG_BIN)"
        if os.geteuid() != 0 and _user_name() != PG_USER:
            return "needs root (to run initdb as user postgres) or to run as user postgres"
        return None

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://{PG_USER}@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def _as_postgres(self, *argv: str, timeout: float = 60) -> None:
        prefix = ["runuser", "-u", PG_USER, "--"] if os.geteuid() == 0 else []
        result = subprocess.run([*prefix, *argv], capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({result.returncode}): {result.stderr or result.stdout}")

    def init(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.folder, PG_USER, PG_USER)
        self._as_postgres(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            PG_USER,
            "-E",
            "UTF8",
            "--no-sync",
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._as_postgres(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.log_path),
            "-w",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """``fast``: roll back open transactions and cut every session (a real restart's first half)."""
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def destroy(self) -> None:
        if self.running():
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)

    # ---- databases ---------------------------------------------------------------------------
    def _admin(self) -> psycopg.Connection:
        return psycopg.connect(
            f"host=127.0.0.1 port={self.port} user={PG_USER} dbname=postgres", autocommit=True
        )

    def make_template(self) -> None:
        from jobstore.migrate import upgrade_to_head

        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{TEMPLATE_DB}"')
        upgrade_to_head(self.url(TEMPLATE_DB))

    def new_database(self) -> str:
        """An empty database at Alembic head (a clone of the migrated template); returns its URL."""
        name = f"faults_{uuid.uuid4().hex[:12]}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}"')
        return self.url(name)


def _user_name() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


def temp_folder(prefix: str) -> Path:
    """A temp folder outside pytest's tmp tree (PostgreSQL's must be reachable by user postgres)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path
