"""The same comparison through the job server: every variant is a job submitted over HTTP.

The head-only job is submitted first; the forked variants (gated, forced, the stage-2 lr probes,
the longer stage 1) are ``POST /jobs/{head}/fork`` from its ``epoch:<U-1>`` checkpoint with their own
``unfreeze_backbone_epoch`` and ``stage2`` settings; the rest (full fine-tune, scratch, head-only
without augmentation, lr x 2) are plain jobs. Records are rebuilt from ``/metrics`` (live rows: a
fork's inherited stage-1 rows included) and ``/events`` (stage changes, gate reads, and the
``restored`` event whose ``initial_metrics`` are model A's F1 on B).

Inputs go over HTTP too: model A (trained here, cached in the work folder — the very weights of the
local run) is uploaded with ``POST /models`` and each domain-B parquet with ``POST /datasets``; the
jobs name them as the answers' ``use_as`` say. The same bytes uploaded again answer with the first
upload, so a rerun stores nothing twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from benchmarks.domains import PARQUET, domain_b, model_a
from benchmarks.records import RunRecord, gate_row, metric_row, stage_row
from benchmarks.variants import HEAD_KEY, Budget, Kind, Variant, spec_values, variants_at

FINAL = ("succeeded", "failed", "cancelled")
STUCK = ("paused", "awaiting_decision")  # a benchmark job never asks for these: report, don't wait
POLL_SECONDS = 0.5
PREFIX = "pvf"  # job names: pvf-s<shift>-seed<seed>-<variant>


class JobsClient:
    """The few endpoints the benchmark needs, with an API key (operator role)."""

    def __init__(self, url: str, key: str, timeout: float = 30.0) -> None:
        self.http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def _created(self, path: str, body: dict[str, Any]) -> str:
        response = self.http.post(path, json=body)
        if response.status_code != 201:
            raise RuntimeError(f"POST {path}: {response.status_code} {response.text}")
        return str(response.json()["id"])

    def submit(self, body: dict[str, Any]) -> str:
        return self._created("/jobs", body)

    def upload(self, collection: str, path: Path) -> dict[str, str]:
        """``POST /models`` or ``/datasets`` with the file as the raw body; the job fields naming it."""
        with path.open("rb") as body:
            response = self.http.post(
                collection,
                params={"filename": path.name},
                content=body,
                headers={"Content-Type": "application/octet-stream"},
            )
        if response.status_code not in (200, 201):
            raise RuntimeError(f"POST {collection} ({path}): {response.status_code} {response.text}")
        return dict(response.json()["use_as"])

    def fork(self, job_id: str, body: dict[str, Any]) -> str:
        return self._created(f"/jobs/{job_id}/fork", body)

    def status(self, job_id: str) -> dict[str, Any]:
        response = self.http.get(f"/jobs/{job_id}")
        response.raise_for_status()
        return dict(response.json())

    def metrics(self, job_id: str) -> list[dict[str, Any]]:
        return self._pages(f"/jobs/{job_id}/metrics", {}, "next_after_epoch", "after_epoch")

    def events(self, job_id: str, *kinds: str) -> list[dict[str, Any]]:
        return self._pages(f"/jobs/{job_id}/events", {"kind": list(kinds)}, "next_after", "after")

    def _pages(self, path: str, params: dict[str, Any], cursor: str, param: str) -> list[dict[str, Any]]:
        """Every row of a paged list: follow ``cursor`` of each page as the ``param`` of the next."""
        found: list[dict[str, Any]] = []
        query = {**params, "limit": 500}
        while True:
            page = self.http.get(path, params=query).raise_for_status().json()
            found += page["data"]
            if page[cursor] is None:
                return found
            query[param] = page[cursor]

    def wait(
        self, job_id: str, done: Callable[[dict[str, Any]], bool], what: str, timeout: float
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(job_id)
            if done(status):
                return status
            if status["state"] in FINAL or status["state"] in STUCK:
                raise RuntimeError(
                    f"job {job_id} is {status['state']} ({status['state_reason']}) before {what}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id}: timed out after {timeout:.0f}s waiting for {what}")
            time.sleep(POLL_SECONDS)


def upload_inputs(client: JobsClient, work: Path, budget: Budget, shift: float, seed: int) -> tuple[str, str]:
    """Upload domain B and model A (both built here, as for the local run); their job-spec names."""
    data = client.upload("/datasets", domain_b(work / "data", budget, shift, seed) / PARQUET)
    pretrain = client.upload("/models", model_a(work / "models", budget, seed))
    return data["data_root"], pretrain["pretrain"]


def run_seed_shift(
    client: JobsClient,
    work: Path,
    budget: Budget,
    shift: float,
    seed: int,
    timeout: float = 3600.0,
    progress: Callable[[str], None] = print,
) -> list[RunRecord]:
    """Every variant at one shift and seed as server jobs; records in the order of ``variants_at``."""
    data, pretrain = upload_inputs(client, work, budget, shift, seed)
    variants = [v for v in variants_at(budget, shift) if v.kind is not Kind.MODEL_A]
    name = f"{PREFIX}-s{shift:.2f}-seed{seed}"
    jobs = {
        HEAD_KEY: client.submit(_job_body(_by_key(variants, HEAD_KEY), budget, seed, data, pretrain, name))
    }
    for variant in variants:
        if variant.key != HEAD_KEY and not variant.fork:
            jobs[variant.key] = client.submit(_job_body(variant, budget, seed, data, pretrain, name))
    forks = [v for v in variants if v.fork]
    if forks:
        last_needed = max(int(v.fork_epoch(budget) or 0) for v in forks)
        client.wait(jobs[HEAD_KEY], lambda s: s["epoch"] >= last_needed, f"epoch {last_needed}", timeout)
        for variant in forks:
            jobs[variant.key] = client.fork(jobs[HEAD_KEY], _fork_body(variant, budget, name))
    records = []
    for variant in variants:
        progress(f"server: shift {shift:.2f} seed {seed}: waiting for {variant.key} ({jobs[variant.key]})")
        status = client.wait(jobs[variant.key], lambda s: s["state"] in FINAL, "the end", timeout)
        records.append(read_record(client, jobs[variant.key], variant, budget, shift, seed, status))
    head = next(r for r in records if r.variant == HEAD_KEY)
    records.insert(0, RunRecord("model_a", shift, seed, "server", initial_f1=head.initial_f1, outcome="none"))
    return records


def _by_key(variants: list[Variant], key: str) -> Variant:
    return next(v for v in variants if v.key == key)


def _job_body(
    variant: Variant, budget: Budget, seed: int, data: str, pretrain: str, name: str
) -> dict[str, Any]:
    body = spec_values(variant, budget, seed)
    body.update(
        name=f"{name}-{variant.key}",
        data_root=data,
        pretrain=None if variant.kind is Kind.SCRATCH else pretrain,
    )
    return body


def _fork_body(variant: Variant, budget: Budget, name: str) -> dict[str, Any]:
    spec = spec_values(variant, budget, 0)
    return {
        "from": f"epoch:{variant.fork_epoch(budget)}",
        "name": f"{name}-{variant.key}",
        "reason": f"benchmark variant {variant.key}: {variant.label}",
        "unfreeze_backbone_epoch": spec["unfreeze_backbone_epoch"],
        "stage2": spec["stage2"],
    }


def read_record(
    client: JobsClient,
    job_id: str,
    variant: Variant,
    budget: Budget,
    shift: float,
    seed: int,
    status: dict[str, Any],
) -> RunRecord:
    events = client.events(job_id, "stage_change", "gate_check", "restored")
    restored = next((e for e in events if e["kind"] == "restored"), None)
    initial = ((restored or {}).get("evidence") or {}).get("initial_metrics") or {}
    return RunRecord(
        variant=variant.key,
        shift=shift,
        seed=seed,
        source="server",
        initial_f1=initial.get("f1"),
        rows=[metric_row(r) for r in client.metrics(job_id)],
        stage_events=[
            stage_row({**e, "trigger": e["evidence"].get("trigger"), "lrs": e["evidence"].get("lrs")})
            for e in events
            if e["kind"] == "stage_change"
        ],
        gate_checks=[gate_row(e["evidence"]) for e in events if e["kind"] == "gate_check"],
        outcome=str(status["state"]),
        reason=str(status["state_reason"]),
        wall_seconds=_wall(status),
        forked_at=variant.fork_epoch(budget),
        job_id=job_id,
    )


def _wall(status: dict[str, Any]) -> float:
    from datetime import datetime

    started, finished = status.get("started_at"), status.get("finished_at")
    if not started or not finished:
        return 0.0
    return (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds()
