"""Untrusted text: which characters are refused, how they are shown, and escaped log records."""

from __future__ import annotations

import logging

import pytest

from jobstore.text import check_safe, escape_log_records, visible, visible_data


@pytest.mark.parametrize(
    "char", ["\x00", "\x07", "\x09", "\x0a", "\x0d", "\x1b", "\x7f", "\x85", "\x9b", "\u202e", "\u2067"]
)
def test_control_and_bidi_characters_are_refused(char: str) -> None:
    with pytest.raises(ValueError, match="position 1"):
        check_safe(f"a{char}b")


def test_ordinary_text_passes_unchanged() -> None:
    text = "Modèle ø — 眼 2 (v1.0) 'quoted' \\ back"

    assert check_safe(text) == text and visible(text) == text


def test_refused_characters_are_shown_as_escapes() -> None:
    assert visible("ok\x1b]0;t\x07 \u202eexe\r\x00") == "ok\\x1b]0;t\\x07 \\u202eexe\\x0d\\x00"
    assert visible_data({"n\x1b": ["\u2066", 3, None]}) == {"n\\x1b": ["\\u2066", 3, None]}


def test_log_records_escape_their_string_arguments(caplog: pytest.LogCaptureFixture) -> None:
    escape_log_records()
    escape_log_records()  # idempotent: one wrapper

    with caplog.at_level(logging.INFO):
        logging.getLogger("tests.text").info("job %s: %r", "a\x1b[2Kb", 7)

    assert caplog.records[-1].getMessage() == "job a\\x1b[2Kb: 7"
