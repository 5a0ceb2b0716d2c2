"""How the client prints: JSON for scripts (``--json``), short lines and tables for people.

What people see passes through ``visible``: a name or reason stored before control characters were
refused (or written by another source) shows ``\\x1b`` instead of driving the terminal. JSON output
escapes them by itself (``json.dumps``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from jobstore.text import visible_data

JOB_COLUMNS = ("id", "name", "state", "stage", "epoch", "best F1", "created")


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=False), flush=True)


def f1(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else "-"


def job_row(job: Mapping[str, Any]) -> dict[str, str]:
    job = visible_data(job)
    best = f1(job.get("best_f1"))
    if job.get("best_epoch"):
        best += f"@{job['best_epoch']}"
    return {
        "id": str(job["id"]),
        "name": str(job.get("name", "")),
        "state": str(job.get("state", "")),
        "stage": str(job.get("stage", "")),
        "epoch": f"{job.get('epoch', 0)}/{job.get('epochs', 0)}",
        "best F1": best,
        "created": str(job.get("created_at", ""))[:19].replace("T", " "),
    }


def job_line(job: Mapping[str, Any]) -> str:
    row = job_row(job)
    return (
        f"{row['id']}  {row['name']}  {row['state']}  stage {row['stage']}  epoch {row['epoch']}  "
        f"best F1 {row['best F1']}"
    )


def table(rows: Sequence[Mapping[str, str]], columns: Sequence[str]) -> str:
    cells = [list(columns), *([row.get(c, "") or "-" for c in columns] for row in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = ("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in cells)
    return "\n".join(lines)


def status_text(job: Mapping[str, Any]) -> str:
    """A job's status for people: state, position, best F1, the latest metrics, the next gate."""
    job = visible_data(job)
    lines = [job_line(job)]
    if job.get("state_reason"):
        lines.append(f"  reason     {job['state_reason']}")
    since = job.get("stage_since_epoch")
    if since:
        lines.append(f"  stage      {job.get('stage')} since epoch {since}: {job.get('stage_reason') or '-'}")
    race = job.get("race")
    if race:  # the job's own state covers the race's stage 1 only
        winner = f", winner {race['winner']}" if race.get("winner") else ""
        lines.append(f"  race       {race.get('state')}{winner}: ocec-jobs race {job['id']}")
    metrics = job.get("latest_metrics") or {}
    if metrics:
        lines.append(
            f"  latest     epoch {metrics.get('epoch')}: val F1 {f1(metrics.get('val_f1'))}, "
            f"val loss {f1(metrics.get('val_loss'))}, train loss {f1(metrics.get('train_loss'))}"
        )
    gate = job.get("next_gate")
    if gate:
        lines.append(
            f"  next gate  stage {gate.get('stage')}: F1 >= {gate.get('threshold')} "
            f"(earliest epoch {gate.get('earliest_epoch') or 'by hand'}, policy {gate.get('policy')}, "
            f"last F1 {f1(gate.get('last_f1'))})"
        )
    decision = job.get("pending_decision")
    if decision:
        lines.append(f"  decision   needed: {decision.get('reason') or decision}")
        lines.append(f"             ocec-jobs decide {job['id']} proceed|extend|retry|stop --reason '…'")
    for key, label in (
        ("eta_seconds", "eta"),
        ("queue_position", "queue"),
        ("heartbeat_age_seconds", "heartbeat"),
    ):
        if job.get(key) is not None:
            value = job[key]
            lines.append(
                f"  {label:<10} {value:.0f} s" if key != "queue_position" else f"  {label:<10} #{value}"
            )
    return "\n".join(lines)


def upload_text(upload: Mapping[str, Any]) -> str:
    upload = visible_data(upload)
    use_as = upload.get("use_as") or {}
    named = ", ".join(f'"{k}": "{v}"' for k, v in use_as.items())
    return (
        f"{upload['kind']} {upload['id']}  {upload.get('filename', '')}  {upload.get('size_bytes')} bytes  "
        f"sha256 {str(upload.get('sha256', ''))[:12]}…\n  use in a job: {{{named}}}"
    )
