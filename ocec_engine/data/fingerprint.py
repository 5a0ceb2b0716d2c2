"""Content fingerprints: the cache key and the run's record of exactly which data it used."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# Bump when decoding or resizing changes, so old caches are not reused.
DECODER_VERSION = 1
_BLOCK = 1 << 20


def fingerprint(files: Iterable[tuple[str, Path]], settings: dict[str, Any]) -> str:
    """Hash of (name, bytes) for every input file plus the settings that shape the output."""
    h = hashlib.blake2b(digest_size=16)
    h.update(json.dumps({"decoder": DECODER_VERSION, **settings}, sort_keys=True).encode())
    for name, path in files:
        h.update(b"\0" + name.encode() + b"\0")
        with path.open("rb") as fh:
            while block := fh.read(_BLOCK):
                h.update(block)
    return h.hexdigest()
