"""Scratch databases for the benchmarks: a SQLite file, or a PostgreSQL database made and dropped."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.engine import make_url

from jobstore.db import make_engine

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@contextmanager
def scratch_database(server: str | None, prefix: str = "ocec_bench") -> Iterator[str]:
    """A fresh SQLite file (``server`` None), or a database created on ``server`` and dropped after."""
    if server is None:
        with tempfile.TemporaryDirectory(prefix=f"{prefix}-") as tmp:
            yield f"sqlite:///{tmp}/ocec.db"
        return
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = make_engine(server).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
