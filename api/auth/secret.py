"""The server secret that signs dashboard sessions: from a setting, or generated once into a file
only its owner can read (``<home>/session_secret``, mode 0600)."""

from __future__ import annotations

import logging
import os
import secrets
import stat
import time
from pathlib import Path

from api.settings import ApiSettings

log = logging.getLogger(__name__)

SECRET_FILE = "session_secret"
MIN_SECRET_CHARS = 32
_READ_TRIES = 50  # another API process may be between creating the file and writing it


def session_secret(settings: ApiSettings) -> bytes:
    if settings.session_secret is not None:
        return settings.session_secret.get_secret_value().encode()
    return _file_secret(settings.home / SECRET_FILE)


def _file_secret(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_existing(path)
    value = secrets.token_hex(32)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    log.info("generated the session secret %s (mode 0600)", path)
    return value.encode()


def _read_existing(path: Path) -> bytes:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("%s was readable by others (mode %o): set to 0600", path, mode)
        path.chmod(0o600)
    for _ in range(_READ_TRIES):
        value = path.read_text().strip()
        if value:
            break
        time.sleep(0.02)
    if len(value) < MIN_SECRET_CHARS:
        raise RuntimeError(f"{path}: the session secret must be at least {MIN_SECRET_CHARS} characters")
    return value.encode()
