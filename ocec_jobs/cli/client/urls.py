"""API paths built from user input: ids are quoted, so a typo cannot reach another route."""

from __future__ import annotations

from urllib.parse import quote


def job_path(job_id: str, *rest: str) -> str:
    return "/".join(["", "jobs", quote(job_id.strip(), safe=""), *rest])
