"""Untrusted free text (job names, reasons, key and file names): what is refused, and how anything
stored earlier, or written by another source, is shown safely.

Refused: control characters (C0 — NUL, BEL, ESC, CR, LF, TAB… —, DEL and C1), which can retitle
or rewrite a terminal, and the bidirectional formatting characters and line separators, which make
text display as something else (``"gpj.exe"`` behind a right-to-left override reads ``"exe.jpg"``).
Shown: the same characters as visible escapes (``\\x1b``, ``\\u202e``), by the CLI, the logs and
(with the same rule in ``api/static/js/text.js``) the dashboard.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

# Bidi marks, embeddings, overrides and isolates, and the Unicode line/paragraph separators.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029")


def is_unsafe(char: str) -> bool:
    code = ord(char)
    return code < 0x20 or 0x7F <= code <= 0x9F or char in _BIDI


def first_unsafe(text: str) -> int | None:
    """The index of the first refused character, or ``None``."""
    return next((i for i, char in enumerate(text) if is_unsafe(char)), None)


def escape_char(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def check_safe(text: str) -> str:
    """``text``, or ValueError naming the first control or bidi character (a pydantic validator)."""
    index = first_unsafe(text)
    if index is not None:
        raise ValueError(
            f"must not contain control or bidirectional-formatting characters "
            f"({escape_char(text[index])} at position {index})"
        )
    return text


def visible(text: str) -> str:
    """``text`` with every refused character written as a visible escape (``\\x1b``, ``\\u202e``)."""
    if first_unsafe(text) is None:
        return text
    return "".join(escape_char(char) if is_unsafe(char) else char for char in text)


def visible_data(data: Any) -> Any:
    """A JSON-like value with every string in it (keys too) made ``visible``."""
    if isinstance(data, str):
        return visible(data)
    if isinstance(data, Mapping):
        return {visible_data(key): visible_data(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [visible_data(item) for item in data]
    return data


def escape_log_records() -> None:
    """Make the string arguments of every log record of this process ``visible`` (a job name or a
    request path logged with ``%s`` can carry escapes otherwise). Idempotent."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "escapes_text", False):
        return

    def make_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        if isinstance(record.args, tuple):
            record.args = tuple(visible(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, Mapping):
            record.args = {k: visible(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return record

    make_record.escapes_text = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(make_record)
