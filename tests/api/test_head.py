"""HEAD on every read answers as its GET would, without a body, over a real uvicorn server: the
JSON routes, the pages, a running job's (endless) event stream, and the refusals (401, 403, 404)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine

from tests.api.worker_sim import SimWorker

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # HTTP only: one database


def _get_paths(app: FastAPI, job_id: str) -> list[str]:
    paths = [path for path, ops in app.openapi()["paths"].items() if "get" in ops]
    filled = [path.replace("{job_id}", job_id) for path in paths]
    return [path for path in filled if "{" not in path] + ["/", f"/ui/jobs/{job_id}", "/static/js/api.js"]


def test_head_answers_every_read_like_get_without_a_body(
    app: FastAPI, live_server: str, http: httpx.Client, engine: Engine, job_body: dict[str, Any]
) -> None:
    job_id = http.post("/jobs", json=job_body).json()["id"]
    worker = SimWorker(engine, job_id)
    worker.claim()
    worker.epoch(1)  # running: its stream would never end by itself

    compared = {}
    for path in _get_paths(app, job_id):
        head = http.head(path, timeout=20)
        with http.stream("GET", path, timeout=20) as get:  # headers only: a stream runs on
            compared[path] = (head.status_code, head.content, head.headers.get("content-type"))
            assert compared[path] == (get.status_code, b"", get.headers.get("content-type")), path

    assert compared[f"/jobs/{job_id}"][0] == 200 and compared["/keys"][0] == 403  # an operator's key
    assert compared[f"/jobs/{job_id}/stream"][2].startswith("text/event-stream")
    assert http.head("/jobs/" + "0" * 32).status_code == 404
    assert httpx.head(f"{live_server}/jobs").status_code == 401
    assert len(compared) > 15
