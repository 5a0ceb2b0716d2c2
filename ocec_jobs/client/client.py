"""``Client``: a method for every route of the API (docs/client.md, docs/api.md).

Answers are the server's JSON as dicts (the shapes of docs/api.md and ``/openapi.json``); errors are
``ApiError`` with the problem details, ``UnreachableError`` when no answer came. Lists come one page at a
time (``list_*``) or as iterators over every page (``iter_*``); ``stream`` follows a job's
Server-Sent Events across dropped connections; ``wait`` blocks until a job reaches a state.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ocec_jobs.client.endpoints import endpoint
from ocec_jobs.client.errors import JobEndedError, UnreachableError, WaitTimeoutError
from ocec_jobs.client.http import Connection, json_of, path_of, present
from ocec_jobs.client.sse import Message, messages
from ocec_jobs.client.transfer import Downloaded, Uploaded, download_to, upload_file

Json = dict[str, Any]
FINAL_STATES = ("succeeded", "failed", "cancelled")
EVALUATION_ENDS = ("succeeded", "failed")
PLOT = "plot.png"
RECONNECT_SECONDS = 60.0
BACKOFF_S = (0.5, 1.0, 2.0, 5.0)
END_EVENT = "end"


class Client(Connection):
    """A connection to one ocec-jobs server. ``Client()`` reads ``$OCEC_URL`` and ``$OCEC_API_KEY``;
    use it as a context manager (or call ``close()``)."""

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(
        self,
        route: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        **ids: str,
    ) -> Any:
        """``call("GET /jobs/{job_id}", job_id=…)``: one route, its JSON answer (None for an empty one)."""
        method, template = route.split(" ", 1)
        response = self.request(
            method,
            path_of(template, ids),
            json=json,
            params=present(params or {}),
            headers=headers,
        )
        return json_of(response) if response.content else None

    # ---- health -----------------------------------------------------------------------------------
    @endpoint("GET /healthz")
    def healthz(self) -> Json:
        """Liveness: the API process answers."""
        result: Json = self.call("GET /healthz")
        return result

    @endpoint("GET /readyz")
    def readyz(self) -> Json:
        """Readiness: database, broker and workers (a 503 raises ``ApiError`` with the checks in ``body``)."""
        result: Json = self.call("GET /readyz")
        return result

    # ---- jobs -------------------------------------------------------------------------------------
    @endpoint("POST /jobs")
    def create_job(self, spec: Mapping[str, Any], *, idempotency_key: str | None = None) -> Json:
        """Submit a job (the spec of docs/api.md); the same ``idempotency_key`` again returns that job."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        result: Json = self.call("POST /jobs", json=dict(spec), headers=headers)
        return result

    @endpoint("GET /jobs")
    def list_jobs(
        self,
        *,
        state: Sequence[str] | None = None,
        stage: int | None = None,
        name: str | None = None,
        parent: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        include_deleted: bool = False,
    ) -> Json:
        """One page of jobs, newest first: ``{"data": [...], "next_cursor": …}``."""
        params = {"state": list(state or []), "stage": stage, "name": name, "parent": parent, "limit": limit}
        params |= {"include_deleted": include_deleted or None}
        result: Json = self.call("GET /jobs", params={**params, "cursor": cursor})
        return result

    @endpoint("DELETE /jobs/{job_id}")
    def delete_job(self, job_id: str, *, reason: str = "") -> Json:
        """Delete a finished job's files; it stays as a tombstone (docs/persistence.md#retention)."""
        result: Json = self.call("DELETE /jobs/{job_id}", params={"reason": reason or None}, job_id=job_id)
        return result

    def iter_jobs(self, **filters: Any) -> Iterator[Json]:
        """Every job the filters of ``list_jobs`` select, page after page."""
        return self._pages(self.list_jobs, "cursor", "next_cursor", filters)

    @endpoint("GET /jobs/{job_id}")
    def get_job(self, job_id: str) -> Json:
        """A job's status: state, stage, epoch, best F1, latest metrics, next gate, spec, links."""
        result: Json = self.call("GET /jobs/{job_id}", job_id=job_id)
        return result

    def wait(
        self, job_id: str, *states: str, timeout: float | None = None, poll_seconds: float = 1.0
    ) -> Json:
        """Block until the job is in one of ``states`` (default: an end state); its status then.

        Raises ``JobEndedError`` when it ended in another state (it cannot get there any more) and
        ``WaitTimeoutError`` after ``timeout`` seconds.
        """
        wanted = states or FINAL_STATES
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.get_job(job_id)
            if job["state"] in wanted:
                return job
            if job["state"] in FINAL_STATES:
                raise JobEndedError(job, wanted)
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeoutError(job, wanted, timeout or 0.0)
            time.sleep(poll_seconds)

    # ---- metrics, events, the live stream ----------------------------------------------------------
    @endpoint("GET /jobs/{job_id}/metrics")
    def list_metrics(
        self, job_id: str, *, after_epoch: int = 0, limit: int | None = None, include_superseded: bool = False
    ) -> Json:
        """One page of per-epoch rows: ``{"data": [...], "next_after_epoch": …}``."""
        params = {"after_epoch": after_epoch, "limit": limit, "include_superseded": include_superseded}
        result: Json = self.call("GET /jobs/{job_id}/metrics", params=params, job_id=job_id)
        return result

    def iter_metrics(self, job_id: str, **options: Any) -> Iterator[Json]:
        """Every epoch row of a job, in epoch order."""
        return self._pages(partial_job(self.list_metrics, job_id), "after_epoch", "next_after_epoch", options)

    @endpoint("GET /jobs/{job_id}/events")
    def list_events(
        self, job_id: str, *, after: int = 0, limit: int | None = None, kind: Sequence[str] | None = None
    ) -> Json:
        """One page of the audit trail: ``{"data": [...], "next_after": …}``."""
        params = {"after": after, "limit": limit, "kind": list(kind or [])}
        result: Json = self.call("GET /jobs/{job_id}/events", params=params, job_id=job_id)
        return result

    def iter_events(self, job_id: str, **options: Any) -> Iterator[Json]:
        """Every event of a job (``kind=[…]`` filters), in order."""
        return self._pages(partial_job(self.list_events, job_id), "after", "next_after", options)

    @endpoint("GET /jobs/{job_id}/notifications")
    def list_notifications(self, job_id: str, *, after: int = 0, limit: int | None = None) -> Json:
        """One page of the job's webhook deliveries: ``{"data": [...], "next_after": …}``."""
        params = {"after": after, "limit": limit}
        result: Json = self.call("GET /jobs/{job_id}/notifications", params=params, job_id=job_id)
        return result

    def iter_notifications(self, job_id: str, **options: Any) -> Iterator[Json]:
        """Every webhook delivery of a job (attempts, status codes, next try), in order."""
        return self._pages(partial_job(self.list_notifications, job_id), "after", "next_after", options)

    @endpoint("GET /jobs/{job_id}/stream")
    def stream(
        self,
        job_id: str,
        *,
        after: str | None = None,
        reconnect_seconds: float = RECONNECT_SECONDS,
        on_reconnect: Callable[[UnreachableError | None], None] | None = None,
    ) -> Iterator[Message]:
        """A job's metrics and events as they happen (everything recorded first), until its ``end``.

        A cut connection is resumed after the last event id received (``Last-Event-ID``): nothing is
        lost or repeated. ``UnreachableError`` is raised after ``reconnect_seconds`` without the server;
        ``on_reconnect`` is told of each retry. ``message.json()`` is the event's data.
        """
        last_id, failing_since, attempt = after, None, 0
        path = path_of("/jobs/{job_id}/stream", {"job_id": job_id})
        while True:
            headers = {"Last-Event-ID": last_id} if last_id else {}
            failure: UnreachableError | None = None
            try:
                with self.open_stream("GET", path, headers=headers) as response:
                    failing_since, attempt = None, 0
                    for message in messages(response.iter_lines()):
                        last_id = message.id or last_id
                        yield message
                        if message.event == END_EVENT:
                            return
            except UnreachableError as exc:
                failing_since = failing_since or time.monotonic()
                if time.monotonic() - failing_since > reconnect_seconds:
                    raise
                failure = exc
            if on_reconnect is not None:
                on_reconnect(failure)
            time.sleep(BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)])
            attempt += 1

    # ---- steering (docs/steering.md) --------------------------------------------------------------
    @endpoint("POST /jobs/{job_id}/stage")
    def force_stage(self, job_id: str, stage: int, reason: str, *, command_id: str | None = None) -> Json:
        """Force stage 2 or 3 at the next epoch boundary: ``{"job", "command", "merged"}``."""
        body = _given(stage=stage, reason=reason, command_id=command_id)
        result: Json = self.call("POST /jobs/{job_id}/stage", json=body, job_id=job_id)
        return result

    @endpoint("POST /jobs/{job_id}/pause")
    def pause(self, job_id: str, reason: str = "", *, command_id: str | None = None) -> Json:
        """Pause a running job (it checkpoints first)."""
        body = _given(reason=reason, command_id=command_id)
        result: Json = self.call("POST /jobs/{job_id}/pause", json=body, job_id=job_id)
        return result

    @endpoint("POST /jobs/{job_id}/cancel")
    def cancel(self, job_id: str, reason: str = "", *, command_id: str | None = None) -> Json:
        """Cancel a job."""
        body = _given(reason=reason, command_id=command_id)
        result: Json = self.call("POST /jobs/{job_id}/cancel", json=body, job_id=job_id)
        return result

    @endpoint("POST /jobs/{job_id}/resume")
    def resume(self, job_id: str, from_: str = "last", reason: str = "", **overrides: Any) -> Json:
        """Resume a paused, failed, cancelled or awaiting job from a checkpoint (``stage``, ``lr``,
        ``epochs``, ``unfreeze_backbone_epoch`` override)."""
        body = _given(**{"from": from_, "reason": reason, **overrides})
        result: Json = self.call("POST /jobs/{job_id}/resume", json=body, job_id=job_id)
        return result

    @endpoint("POST /jobs/{job_id}/fork")
    def fork(self, job_id: str, from_: str = "best", reason: str = "", **overrides: Any) -> Json:
        """A new job from a checkpoint of this one (``name``, ``stage2={…}`` and the resume overrides)."""
        body = _given(**{"from": from_, "reason": reason, **overrides})
        result: Json = self.call("POST /jobs/{job_id}/fork", json=body, job_id=job_id)
        return result

    @endpoint("POST /jobs/{job_id}/decide")
    def decide(
        self, job_id: str, action: str, reason: str, *, epochs: int | None = None, lr: float | None = None
    ) -> Json:
        """Decide a failed gate of an ``awaiting_decision`` job: proceed, extend, retry or stop."""
        body = _given(action=action, reason=reason, epochs=epochs, lr=lr)
        result: Json = self.call("POST /jobs/{job_id}/decide", json=body, job_id=job_id)
        return result

    # ---- checkpoints and files -------------------------------------------------------------------
    @endpoint("GET /jobs/{job_id}/checkpoints")
    def checkpoints(self, job_id: str, *, include_superseded: bool = False) -> list[Json]:
        """A job's checkpoint records, each with its ``download`` path."""
        params = {"include_superseded": include_superseded}
        result: list[Json] = self.call("GET /jobs/{job_id}/checkpoints", params=params, job_id=job_id)
        return result

    @endpoint("GET /jobs/{job_id}/artifacts/{name}", "GET /jobs/{job_id}/plot.png")
    def download(
        self, job_id: str, artifact: str = "best.pt", to: str | Path | None = None, *, overwrite: bool = False
    ) -> Downloaded:
        """Save ``best.pt``, ``last.pt``, ``best.onnx``, ``plot.png`` or a checkpoint path to ``to``
        (default: the artifact's file name here); never leaves half a file."""
        template = "/jobs/{job_id}/plot.png" if artifact == PLOT else "/jobs/{job_id}/artifacts/{name:path}"
        path = path_of(template, {"job_id": job_id, "name": artifact})
        target = Path(to) if to is not None else Path(Path(artifact).name)
        with self.open_stream("GET", path) as response:
            return download_to(response, target, overwrite=overwrite)

    @endpoint("GET /metrics")
    def prometheus_metrics(self) -> str:
        """The server's Prometheus text (queue, jobs by state, epochs, heartbeats, latency)."""
        return self.request("GET", "/metrics").text

    # ---- uploads (docs/uploads.md) -----------------------------------------------------------------
    @endpoint("POST /models")
    def upload_model(self, file: str | Path) -> Uploaded:
        """Upload a checkpoint for a job's ``pretrain``; ``.path`` is what the job names."""
        return upload_file(self, "/models", Path(file))

    @endpoint("POST /datasets")
    def upload_dataset(self, file: str | Path) -> Uploaded:
        """Upload a parquet file or a zip of open/ and closed/ for a job's ``data_root``."""
        return upload_file(self, "/datasets", Path(file))

    @endpoint("GET /models")
    def list_models(self, *, limit: int | None = None, cursor: str | None = None) -> Json:
        """One page of uploaded models, newest first."""
        result: Json = self.call("GET /models", params={"limit": limit, "cursor": cursor})
        return result

    @endpoint("GET /datasets")
    def list_datasets(self, *, limit: int | None = None, cursor: str | None = None) -> Json:
        """One page of uploaded datasets, newest first."""
        result: Json = self.call("GET /datasets", params={"limit": limit, "cursor": cursor})
        return result

    def iter_models(self, **options: Any) -> Iterator[Json]:
        return self._pages(self.list_models, "cursor", "next_cursor", options)

    def iter_datasets(self, **options: Any) -> Iterator[Json]:
        return self._pages(self.list_datasets, "cursor", "next_cursor", options)

    @endpoint("GET /models/{upload_id}")
    def get_model(self, upload_id: str) -> Json:
        result: Json = self.call("GET /models/{upload_id}", upload_id=upload_id)
        return result

    @endpoint("GET /datasets/{upload_id}")
    def get_dataset(self, upload_id: str) -> Json:
        result: Json = self.call("GET /datasets/{upload_id}", upload_id=upload_id)
        return result

    @endpoint("DELETE /models/{upload_id}")
    def delete_model(self, upload_id: str) -> None:
        """Remove an upload no unfinished job names (409 names the jobs that do)."""
        self.call("DELETE /models/{upload_id}", upload_id=upload_id)

    @endpoint("DELETE /datasets/{upload_id}")
    def delete_dataset(self, upload_id: str) -> None:
        """Remove an upload no unfinished job names (409 names the jobs that do)."""
        self.call("DELETE /datasets/{upload_id}", upload_id=upload_id)

    # ---- races (docs/race.md) ---------------------------------------------------------------------
    @endpoint("GET /jobs/{job_id}/race")
    def get_race(self, job_id: str) -> Json:
        """A race's leaderboard, budget, rungs and winner (``job_id``: the race's parent job)."""
        result: Json = self.call("GET /jobs/{job_id}/race", job_id=job_id)
        return result

    @endpoint("POST /jobs/{job_id}/race/stop")
    def stop_race(self, job_id: str, reason: str = "", *, idempotency_key: str | None = None) -> Json:
        """Cancel every candidate still in play."""
        return self._race_command(job_id, "stop", {"reason": reason}, idempotency_key)

    @endpoint("POST /jobs/{job_id}/race/promote")
    def promote_candidate(
        self, job_id: str, candidate: str, reason: str = "", *, idempotency_key: str | None = None
    ) -> Json:
        """Make ``candidate`` the sole survivor."""
        return self._race_command(
            job_id, "promote", {"candidate": candidate, "reason": reason}, idempotency_key
        )

    @endpoint("POST /jobs/{job_id}/race/extend")
    def extend_candidate(
        self, job_id: str, candidate: str, reason: str = "", *, idempotency_key: str | None = None
    ) -> Json:
        """Let ``candidate`` through its next rung (a cut one is resumed)."""
        return self._race_command(
            job_id, "extend", {"candidate": candidate, "reason": reason}, idempotency_key
        )

    @endpoint("POST /jobs/{job_id}/race/candidates")
    def add_candidate(
        self,
        job_id: str,
        candidate: Mapping[str, Any],
        reason: str = "",
        *,
        idempotency_key: str | None = None,
    ) -> Json:
        """Add a candidate (``{"name", "stage2": {...}}`` or ``{"name", "full_finetune": true}``)."""
        return self._race_command(job_id, "candidates", {**candidate, "reason": reason}, idempotency_key)

    def _race_command(self, job_id: str, verb: str, body: Json, key: str | None) -> Json:
        headers = {"Idempotency-Key": key} if key else None
        sent = {k: v for k, v in body.items() if v != ""}
        result: Json = self.call(
            f"POST /jobs/{{job_id}}/race/{verb}", json=sent, headers=headers, job_id=job_id
        )
        return result

    # ---- evaluations (docs/evaluations-service.md) -------------------------------------------------
    @endpoint("POST /evaluations")
    def create_evaluation(self, body: Mapping[str, Any]) -> Json:
        """Queue a model scored on a dataset: ``{"model": {...}, "data": {...}, "split", "threshold"}``."""
        result: Json = self.call("POST /evaluations", json=dict(body))
        return result

    @endpoint("GET /evaluations")
    def list_evaluations(self, *, limit: int | None = None, cursor: str | None = None) -> Json:
        """One page of evaluations, newest first."""
        result: Json = self.call("GET /evaluations", params={"limit": limit, "cursor": cursor})
        return result

    def iter_evaluations(self, **options: Any) -> Iterator[Json]:
        return self._pages(self.list_evaluations, "cursor", "next_cursor", options)

    @endpoint("GET /evaluations/{evaluation_id}")
    def get_evaluation(self, evaluation_id: str) -> Json:
        """One evaluation: its state, progress and, once it succeeded, its report."""
        result: Json = self.call("GET /evaluations/{evaluation_id}", evaluation_id=evaluation_id)
        return result

    def wait_evaluation(
        self, evaluation_id: str, *, timeout: float = 600.0, poll_seconds: float = 1.0
    ) -> Json:
        """Poll an evaluation until it succeeded or failed (``WaitTimeoutError`` after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while (evaluation := self.get_evaluation(evaluation_id))["state"] not in EVALUATION_ENDS:
            if time.monotonic() > deadline:
                raise WaitTimeoutError(evaluation, EVALUATION_ENDS, timeout)
            time.sleep(poll_seconds)
        return evaluation

    @endpoint("GET /jobs/{job_id}/evaluation")
    def job_evaluation(self, job_id: str) -> Json:
        """A fine-tune job's own before -> after table and its reports."""
        result: Json = self.call("GET /jobs/{job_id}/evaluation", job_id=job_id)
        return result

    @endpoint(
        "GET /evaluations/{evaluation_id}/worst.png",
        "GET /evaluations/{evaluation_id}/worst/{index}.png",
        "GET /evaluations/{evaluation_id}/{curve}.png",
        "GET /jobs/{job_id}/evaluation/{tag}/worst.png",
        "GET /jobs/{job_id}/evaluation/{tag}/worst/{index}.png",
        "GET /jobs/{job_id}/evaluation/{curve}.png",
    )
    def evaluation_image(self, path: str, to: str | Path, *, overwrite: bool = False) -> Downloaded:
        """Save one of an evaluation's PNGs, named by its path (``/evaluations/<id>/roc.png``, the
        ``links`` of an evaluation or of a job's evaluation)."""
        with self.open_stream("GET", path) as response:
            return download_to(response, Path(to), overwrite=overwrite)

    # ---- keys and sessions (docs/security.md) ----------------------------------------------------
    @endpoint("GET /keys")
    def list_keys(self) -> list[Json]:
        """Every API key (admin); never the key itself."""
        result: list[Json] = self.call("GET /keys")
        return result

    @endpoint("POST /keys")
    def create_key(self, name: str, role: str) -> Json:
        """A new key (admin); ``["key"]`` is shown this once."""
        result: Json = self.call("POST /keys", json={"name": name, "role": role})
        return result

    @endpoint("DELETE /keys/{key_id}")
    def revoke_key(self, key_id: str) -> Json:
        result: Json = self.call("DELETE /keys/{key_id}", key_id=key_id)
        return result

    @endpoint("GET /session/me")
    def who_am_i(self) -> Json:
        """The name and role of this client's key."""
        result: Json = self.call("GET /session/me")
        return result

    @endpoint("POST /session")
    def sign_in(self, key: str | None = None) -> Json:
        """A dashboard session (cookies kept by this client) for ``key`` (default: this client's)."""
        result: Json = self.call("POST /session", json={"key": key or self.key})
        return result

    @endpoint("DELETE /session")
    def sign_out(self) -> None:
        self.call("DELETE /session")

    # ---- paging (api/paging.py) ----------------------------------------------------------------------
    @staticmethod
    def _pages(
        page_of: Callable[..., Json], cursor_param: str, next_field: str, options: Mapping[str, Any]
    ) -> Iterator[Json]:
        arguments = dict(options)
        while True:
            page = page_of(**arguments)
            yield from page["data"]
            following = page.get(next_field)
            if following is None:
                return
            arguments[cursor_param] = following


def partial_job(page_of: Callable[..., Json], job_id: str) -> Callable[..., Json]:
    def page(**options: Any) -> Json:
        return page_of(job_id, **options)

    return page


def _given(**fields: Any) -> Json:
    """A request body of the fields that were given (None and "" left out: the server's defaults)."""
    return {k: v for k, v in fields.items() if v is not None and v != ""}
