"""The evaluation summary a person reads: a re-queued evaluation says its attempt, whom it lost and why."""

from __future__ import annotations

from ocec_jobs.cli.client.evaluations import summary_text

BASE = {"id": "e1", "model_path": "m.pt", "data_path": "d", "split": "all", "links": {"worst_png": "/w"}}


def test_a_requeued_evaluation_shows_its_attempt_lost_workers_and_reason() -> None:
    lost = [{"attempt": 1, "worker": "w1@host", "pid": 4242, "why": "lease expired"}]
    reason = "re-queued as attempt 2 (retry 1 of 3): worker w1@host (pid 4242, attempt 1) lost"
    text = summary_text({**BASE, "state": "queued", "attempt": 2, "lost": lost, "state_reason": reason})
    assert "attempt 2; lost workers: w1@host (pid 4242)" in text
    assert f"reason: {reason}" in text
    assert "attempt" not in summary_text({**BASE, "state": "queued", "attempt": 1, "lost": []})
