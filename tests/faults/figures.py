"""The figures of the fault suite: what was injected, what completed, what was lost, how fast it healed.

Tests record each fault (``Figures.fault``) and each job they checked (``Figures.job``); the
session-finish hook in ``conftest.py`` prints the summary to the terminal (also under capture) and
writes it to ``benchmarks/out/faults.json``. Recovery seconds of a fault = from the moment it was
injected to the next epoch row the job recorded (read from the database after the job ended).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[2] / "benchmarks" / "out" / "faults.json"


@dataclass
class Fault:
    scenario: str
    kind: str  # e.g. kill-9-pool-child, kill-9-worker-tree, redis-restart, sigterm-worker
    job_id: str
    at: datetime
    where: str = ""  # e.g. "epoch 3, ~50% in"
    bad_input: bool = False  # a broken input the job must fail on (no recovery to measure)
    recovery_s: float | None = None  # to the job's next epoch row
    detected_s: float | None = None  # to the job's next ``interrupted`` (lease expiry noticed), if any
    resumed_s: float | None = None  # to the next attempt's confirmed restore, if any


@dataclass
class JobTally:
    scenario: str
    job_id: str
    state: str
    expected_epochs: int
    live_rows: int
    lost: int  # epochs without a live row
    duplicated: int  # live rows beyond one per epoch
    superseded: int  # rows kept for audit after a rollback (replayed epochs)
    attempts: int
    matches_reference: bool
    reason: str = ""


@dataclass
class Figures:
    faults: list[Fault] = field(default_factory=list)
    jobs: list[JobTally] = field(default_factory=list)

    def fault(self, fault: Fault) -> Fault:
        self.faults.append(fault)
        return fault

    def job(self, tally: JobTally) -> None:
        self.jobs.append(tally)

    def summary(self) -> dict[str, Any]:
        infra = [f for f in self.faults if not f.bad_input]
        recoveries = [f.recovery_s for f in infra if f.recovery_s is not None]
        completed = [j for j in self.jobs if j.state == "succeeded"]
        return {
            "faults_injected": len(infra),
            "faults_by_kind": _count(f.kind for f in infra),
            "bad_inputs": _count(f.kind for f in self.faults if f.bad_input),
            "jobs_checked": len(self.jobs),
            "jobs_completed": len(completed),
            "jobs_failed_as_intended": len([j for j in self.jobs if j.state == "failed"]),
            "jobs_matching_reference": len([j for j in completed if j.matches_reference]),
            "rows_lost": sum(j.lost for j in self.jobs),
            "rows_duplicated": sum(j.duplicated for j in self.jobs),
            "rows_superseded": sum(j.superseded for j in self.jobs),
            "recovery_seconds": {
                "max": round(max(recoveries), 2) if recoveries else None,
                "mean": round(statistics.fmean(recoveries), 2) if recoveries else None,
                "per_fault": [
                    {
                        "scenario": f.scenario,
                        "kind": f.kind,
                        "where": f.where,
                        "seconds": _round(f.recovery_s),
                        "detected_s": _round(f.detected_s),
                        "resumed_s": _round(f.resumed_s),
                    }
                    for f in infra
                ],
            },
            "jobs": [asdict(j) for j in self.jobs],
        }

    def lines(self) -> list[str]:
        return summary_lines(self.summary())

    def write(self, path: Path = OUT) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.summary(), indent=2, default=str) + "\n")
        return path


def summary_lines(s: dict[str, Any]) -> list[str]:
    """The printed figures of a summary (as ``Figures.summary`` or faults.json hold it)."""
    rec = s["recovery_seconds"]
    out = [
        f"faults injected: {s['faults_injected']}  "
        + "  ".join(f"{k}={v}" for k, v in sorted(s["faults_by_kind"].items())),
        "bad inputs (each must fail once, with its reason): "
        + "  ".join(f"{k}={v}" for k, v in sorted(s["bad_inputs"].items())),
        f"jobs completed: {s['jobs_completed']} (matching the uninterrupted reference: "
        f"{s['jobs_matching_reference']}); failed as intended: {s['jobs_failed_as_intended']}",
        f"metric rows lost: {s['rows_lost']}  duplicated: {s['rows_duplicated']}  "
        f"superseded (replayed after a rollback, kept for audit): {s['rows_superseded']}",
        f"recovery seconds (fault -> next epoch row): max {rec['max']}  mean {rec['mean']}",
    ]
    out.append(f"  {'scenario':<44} {'fault':<22} {'where':<20} {'lost->':>7} {'resumed':>7} {'row':>6}")
    for f in rec["per_fault"]:
        out.append(
            f"  {f['scenario'][:44]:<44} {f['kind']:<22} {f['where']:<20} "
            f"{_s(f['detected_s']):>7} {_s(f['resumed_s']):>7} {_s(f['seconds']):>6}"
        )
    return out


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _count(kinds: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for kind in kinds:
        counts[kind] = counts.get(kind, 0) + 1
    return counts


FIGURES = Figures()  # one per pytest session (the suite's hook prints and writes it)
