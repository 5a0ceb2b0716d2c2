"""The Python client of ocec-jobs: ``from ocec_jobs.client import Client`` (docs/client.md)."""

from __future__ import annotations

from ocec_jobs.client.client import FINAL_STATES, Client, Json
from ocec_jobs.client.errors import (
    ApiError,
    JobEndedError,
    OcecJobsError,
    UnexpectedAnswerError,
    UnreachableError,
    WaitTimeoutError,
)
from ocec_jobs.client.sse import Message
from ocec_jobs.client.transfer import Downloaded, Uploaded

__all__ = [
    "FINAL_STATES",
    "ApiError",
    "Client",
    "Downloaded",
    "JobEndedError",
    "Json",
    "Message",
    "OcecJobsError",
    "UnexpectedAnswerError",
    "UnreachableError",
    "Uploaded",
    "WaitTimeoutError",
]
