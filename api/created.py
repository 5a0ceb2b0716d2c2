"""How a POST that makes a job answers: 201 with the job's ``Location``, or 200 when the same
``Idempotency-Key`` and body replay an earlier request (POST /jobs, POST /jobs/{id}/fork)."""

from __future__ import annotations

from fastapi import Response, status

from api.errors import Responses
from api.schemas import JobStatus
from jobstore.models import Job

REPLAY: Responses = {
    200: {"model": JobStatus, "description": "replay of an earlier request with the same key"}
}


def location(job: Job) -> str:
    return f"/jobs/{job.id}"


def answer_created(response: Response, job: Job, *, created: bool) -> None:
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    response.headers["Location"] = location(job)
