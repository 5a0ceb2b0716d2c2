"""The client's Server-Sent Events parser."""

from __future__ import annotations

from ocec_jobs.client.sse import Message, messages


def test_events_ids_comments_and_multiline_data() -> None:
    lines = [
        ": job abc", "retry: 2000", "",
        "event: metric", 'data: {"epoch": 1}', "id: 5", "",
        ": keep-alive", "",
        "data: a", "data: b", "",
        "event: end", 'data: {"state": "succeeded"}', "",
    ]  # fmt: skip
    assert list(messages(lines)) == [
        Message("metric", '{"epoch": 1}', "5"),
        Message("message", "a\nb", None),
        Message("end", '{"state": "succeeded"}', None),
    ]


def test_carriage_returns_and_fields_without_a_space() -> None:
    assert list(messages(["event:x\r", "data:1\r", "id:7\r", "\r"])) == [Message("x", "1", "7")]


def test_a_message_without_data_or_cut_before_its_blank_line_is_not_delivered() -> None:
    assert list(messages(["event: lonely", "", "event: cut", "data: 1"])) == []
