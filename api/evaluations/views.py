"""Stored evaluations and report files → what the routes answer.

An evaluation's files live in ``<runs_root>/<out_dir>`` (``evaluations/<id>``); a fine-tune job's
own evaluation in ``<runs_root>/<job id>/evaluation/<tag>/`` (written by its worker: report.json,
worst.png, worst/<i>.png). Every file is found through ``api.paths.inside`` (confined to the runs
root) and a tag must be a plain name, so a request can never name a file elsewhere.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from api.errors import ApiError, ProblemType
from api.paths import inside
from api.schemas.evaluations import EvaluationLinks, EvaluationPublic, JobEvaluation, ThresholdChoice
from jobstore.models import Evaluation, Job
from jobstore.paths import within

log = logging.getLogger(__name__)

JOB_EVALUATION_DIR = "evaluation"  # in a job's run folder
REPORT = "report.json"
WORST_SHEET = "worst.png"
TAG = re.compile(r"^[A-Za-z0-9_]{1,64}$")
SUMMARY_KEYS = ("threshold", "at_0_5", "at_threshold", "roc_auc", "pr_auc", "eer", "data", "bootstrap")


def summary_of(report: dict[str, Any]) -> dict[str, Any] | None:
    """The headline numbers of a report (the list shows them; the sweep and curves stay out)."""
    return {key: report[key] for key in SUMMARY_KEYS if key in report} if report else None


def public(evaluation: Evaluation, *, with_report: bool = False) -> EvaluationPublic:
    link = f"/evaluations/{evaluation.id}"
    progress = {k: int(v) for k, v in evaluation.progress.items() if isinstance(v, int)}
    return EvaluationPublic(
        id=evaluation.id, name=evaluation.name, state=evaluation.state, state_reason=evaluation.state_reason,
        attempt=evaluation.attempt, lost=list(evaluation.lost),
        source=evaluation.source, model_path=evaluation.model_path, model_root=evaluation.model_root,
        data_path=evaluation.data_path, split=evaluation.split,
        threshold=ThresholdChoice(rule=evaluation.threshold_rule, target=evaluation.threshold_target),
        top_k=evaluation.top_k, progress=progress, summary=summary_of(evaluation.report),
        report=(evaluation.report or None) if with_report else None,
        created_at=evaluation.created_at, started_at=evaluation.started_at,
        finished_at=evaluation.finished_at,
        links=EvaluationLinks(
            self=link, worst_png=f"{link}/worst.png", roc_png=f"{link}/roc.png", pr_png=f"{link}/pr.png"
        ),
    )  # fmt: skip


def not_found(detail: str) -> ApiError:
    return ApiError(404, ProblemType.NOT_FOUND, detail, "Not found")


def image_file(runs_root: Path, folder: str, index: int | None) -> Path:
    """The contact sheet (``index`` None) or one worst crop of an evaluation folder, or a 404."""
    relative = f"{folder}/{WORST_SHEET}" if index is None else f"{folder}/worst/{index}.png"
    path = inside(runs_root, relative)
    if path is None:
        raise not_found(f"no image {relative!r}: not written (yet), or the evaluation has none")
    return path


def job_folder(job: Job, tag: str | None = None) -> str:
    base = f"{job.run_dir or job.id}/{JOB_EVALUATION_DIR}"
    if tag is None:
        return base
    if not TAG.match(tag):
        raise not_found(f"no evaluation {tag!r} in job {job.id}")
    return f"{base}/{tag}"


def job_reports(runs_root: Path, job: Job) -> dict[str, dict[str, Any]]:
    """Each tag's report under the job's evaluation folder (unreadable ones are logged and skipped)."""
    folder = inside_dir(runs_root, job_folder(job))
    reports: dict[str, dict[str, Any]] = {}
    for child in sorted(folder.iterdir()) if folder is not None else []:
        relative = f"{job_folder(job)}/{child.name}/{REPORT}"
        path = inside(runs_root, relative) if TAG.match(child.name) else None
        if path is None:
            continue
        try:
            reports[child.name] = json.loads(path.read_text())
        except (OSError, ValueError):
            log.warning("job %s: unreadable evaluation report %s", job.id, path)
    return reports


def inside_dir(root: Path, relative: str) -> Path | None:
    try:
        resolved = within(root, relative, absolute_ok=False)
    except (OSError, RuntimeError, ValueError):
        return None
    return resolved if resolved is not None and resolved.is_dir() else None


def job_report(runs_root: Path, job: Job, tag: str) -> dict[str, Any]:
    path = inside(runs_root, f"{job_folder(job, tag)}/{REPORT}")
    if path is None:
        raise not_found(f"no evaluation {tag!r} in job {job.id}")
    try:
        report: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise not_found(f"the report of {tag!r} in job {job.id} cannot be read") from exc
    return report


# tag → (model, domain) of the before → after table, in its order (EVAL_CONTRACT: the job's own)
TAGS = {
    "before_B": ("A", "B"), "stage1_B": ("stage1", "B"), "stage2_B": ("stage2", "B"),
    "stage3_B": ("stage3", "B"), "after_B": ("best", "B"), "before_A": ("A", "A"), "after_A": ("best", "A"),
}  # fmt: skip


def job_evaluation(runs_root: Path, job: Job) -> JobEvaluation:
    """The job result's summary (``result["evaluation"]``) when the job carries one, else the same
    table built from the reports on disk; and the reports."""
    reports = job_reports(runs_root, job)
    result = getattr(job, "result", None)  # the job result's evaluation summary (eval-engine's worker)
    summary = result.get("evaluation") if isinstance(result, dict) else None
    if not isinstance(summary, dict):
        summary = table_of(reports) if reports else None
    return JobEvaluation(job_id=job.id, summary=summary, reports=reports)


def table_of(reports: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The summary shape of the job result, from the reports (known tags first, in table order)."""
    tags = [t for t in TAGS if t in reports] + sorted(t for t in reports if t not in TAGS)
    rows = [_row(tag, reports[tag]) for tag in tags]
    before, after = reports.get("before_A"), reports.get("after_A")
    forgetting = _f1(before) - _f1(after) if before and after else None
    first = reports[tags[0]]
    threshold = first.get("threshold") or {}
    return {
        "split": (first.get("data") or {}).get("split"), "threshold": threshold.get("value"),
        "rule": threshold.get("rule"), "table": rows, "forgetting": forgetting,
        "reports": {tag: f"{JOB_EVALUATION_DIR}/{tag}/{REPORT}" for tag in tags},
    }  # fmt: skip


def _f1(report: dict[str, Any]) -> float:
    return float((report.get("at_0_5") or {}).get("f1") or 0.0)


def _row(tag: str, report: dict[str, Any]) -> dict[str, Any]:
    model, domain = TAGS.get(tag, (tag, ""))
    at, chosen = report.get("at_0_5") or {}, report.get("at_threshold") or {}
    return {
        "tag": tag, "model": model, "domain": domain, "split": (report.get("data") or {}).get("split"),
        "f1": at.get("f1"), "f1_at_threshold": chosen.get("f1"), "roc_auc": report.get("roc_auc"),
        "pr_auc": report.get("pr_auc"), "accuracy": at.get("accuracy"),
    }  # fmt: skip
