"""RFC 9457 problem details for every error the API answers.

FastAPI has no built-in problem details, so every error path (our ``ApiError``s, Starlette's
``HTTPException`` — 404 for unknown routes, 405, 413 from the body limit —, request validation,
the state table's ``IllegalTransitionError`` and anything unexpected) is turned into an
``application/problem+json`` body here. ``type`` is a stable URN per kind of error so clients can
branch on it without parsing ``detail``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from enum import StrEnum
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException

from jobstore import errors as store
from jobstore.states import IllegalTransitionError, JobState

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger(__name__)


class ProblemType(StrEnum):
    VALIDATION = "urn:ocec-jobs:problem:validation"
    NOT_FOUND = "urn:ocec-jobs:problem:not-found"
    CONFLICT = "urn:ocec-jobs:problem:state-conflict"
    IDEMPOTENCY = "urn:ocec-jobs:problem:idempotency-key-reused"
    NO_CHECKPOINT = "urn:ocec-jobs:problem:no-checkpoint"
    CHECKPOINT_PRUNED = "urn:ocec-jobs:problem:checkpoint-pruned"
    JOB_DELETED = "urn:ocec-jobs:problem:job-deleted"
    IN_USE = "urn:ocec-jobs:problem:in-use"
    QUOTA = "urn:ocec-jobs:problem:quota-exceeded"
    UNAVAILABLE = "urn:ocec-jobs:problem:unavailable"
    UNAUTHENTICATED = "urn:ocec-jobs:problem:unauthenticated"
    FORBIDDEN = "urn:ocec-jobs:problem:forbidden"
    CSRF = "urn:ocec-jobs:problem:csrf"
    LAST_ADMIN_KEY = "urn:ocec-jobs:problem:last-admin-key"
    TOO_MANY_FAILURES = "urn:ocec-jobs:problem:too-many-failed-keys"
    HTTP = "about:blank"
    INTERNAL = "urn:ocec-jobs:problem:internal"


class FieldError(BaseModel):
    field: str  # dotted path inside the body, query or header ("stage2.lr", "limit")
    location: str  # body | query | path | header
    message: str
    type: str


class Problem(BaseModel):
    """The problem-details body (RFC 9457), with our extension members."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    instance: str
    errors: list[FieldError] | None = None
    errors_omitted: int | None = None  # errors found beyond the first MAX_LISTED_ERRORS listed
    job_id: str | None = None
    state: str | None = None


class ApiError(Exception):
    """An error the routes raise on purpose; rendered as a problem with ``extra`` members."""

    def __init__(
        self,
        status: int,
        kind: ProblemType,
        detail: str,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.headers = headers
        self.extra = {k: v for k, v in extra.items() if v is not None}


def conflict(job_id: str, state: str, detail: str) -> ApiError:
    return ApiError(
        409, ProblemType.CONFLICT, detail, "Conflict with the job's state", job_id=job_id, state=state
    )


def invalid_field(field: str, message: str, kind: str, location: str = "body") -> ApiError:
    error = FieldError(field=field, location=location, message=message, type=kind)
    return ApiError(
        422, ProblemType.VALIDATION, f"{field}: {message}", "Invalid request", errors=[error.model_dump()]
    )


def problem_response(
    request: Request, problem: Problem, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = problem.model_dump(exclude_none=True, mode="json")
    return JSONResponse(body, status_code=problem.status, media_type=PROBLEM_JSON, headers=headers)


def _problem(
    request: Request, status: int, kind: ProblemType, detail: str, title: str, **extra: Any
) -> Problem:
    return Problem(type=kind, title=title, status=status, detail=detail, instance=request.url.path, **extra)


async def api_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return problem_response(
        request, _problem(request, exc.status, exc.kind, exc.detail, exc.title, **exc.extra), exc.headers
    )


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    kind = ProblemType.NOT_FOUND if exc.status_code == 404 else ProblemType.HTTP
    title = HTTPStatus(exc.status_code).phrase
    detail = exc.detail if isinstance(exc.detail, str) else title
    problem = _problem(request, exc.status_code, kind, detail, title)
    return problem_response(request, problem, headers=getattr(exc, "headers", None))


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    found = exc.errors()
    listed = listed_errors([field_error(e) for e in found[:MAX_LISTED_ERRORS]], len(found))
    problem = _problem(
        request, 422, ProblemType.VALIDATION, listed.pop("detail"), "Invalid request", **listed
    )
    return problem_response(request, problem)


MAX_LISTED_ERRORS = 20  # a hostile body can hold thousands of mistakes: the answer stays small
MAX_FIELD_CHARS = 200  # a field's name comes from the body: a 60 KB key must not come back twice


def listed_errors(errors: Sequence[FieldError], total: int) -> dict[str, Any]:
    """``detail``, ``errors`` (the first ``MAX_LISTED_ERRORS``, fields clipped) and ``errors_omitted``."""
    shown = [_clipped(e) for e in errors[:MAX_LISTED_ERRORS]]
    omitted = max(total - len(shown), 0)
    detail = "; ".join(f"{e.field or e.location}: {e.message}" for e in shown)
    if omitted:
        detail += f"; and {omitted} more"
    return {"detail": detail, "errors": shown, "errors_omitted": omitted or None}


def _clipped(error: FieldError) -> FieldError:
    return error.model_copy(update={"field": _clip(error.field), "message": _clip(error.message)})


def _clip(text: str) -> str:
    return text if len(text) <= MAX_FIELD_CHARS else text[: MAX_FIELD_CHARS - 1] + "…"


async def transition_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, IllegalTransitionError)
    job_id = request.path_params.get("job_id")
    extra = {"job_id": job_id, "state": JobState(exc.current).value}
    problem = _problem(request, 409, ProblemType.CONFLICT, str(exc), "Conflict with the job's state", **extra)
    return problem_response(request, problem)


# jobstore's domain errors: (status, problem type, title, field named in errors[] or None, location).
_STORE_ERRORS: dict[type[store.JobStoreError], tuple[int, ProblemType, str, str | None, str]] = {
    store.JobNotFoundError: (404, ProblemType.NOT_FOUND, "Job not found", None, ""),
    store.CommandNotFoundError: (404, ProblemType.NOT_FOUND, "Command not found", None, ""),
    store.JobNotRunningError: (409, ProblemType.CONFLICT, "Conflict with the job's state", None, ""),
    store.NoCheckpointError: (409, ProblemType.NO_CHECKPOINT, "No such checkpoint", None, ""),
    store.CheckpointPrunedError: (409, ProblemType.CHECKPOINT_PRUNED, "Checkpoint pruned", None, ""),
    store.DeleteRefusedError: (409, ProblemType.CONFLICT, "Conflict with the job's state", None, ""),
    store.JobDeletedError: (409, ProblemType.JOB_DELETED, "Job deleted", None, ""),
    store.IdempotencyConflictError: (
        422,
        ProblemType.IDEMPOTENCY,
        "Idempotency key reused",
        "Idempotency-Key",
        "header",
    ),
    store.InvalidCursorError: (422, ProblemType.VALIDATION, "Invalid request", "cursor", "query"),
    store.InvalidSelectorError: (422, ProblemType.VALIDATION, "Invalid request", "from", "body"),
    store.InvalidResumeError: (422, ProblemType.VALIDATION, "Invalid request", "", "body"),
    store.InvalidCommandError: (422, ProblemType.VALIDATION, "Invalid request", "", "body"),
    store.QuotaExceededError: (429, ProblemType.QUOTA, "Too many queued jobs", None, ""),
    store.RaceConflictError: (409, ProblemType.CONFLICT, "Conflict with the race's state", None, ""),
}


async def store_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, store.JobStoreError)
    known = next((v for k, v in _STORE_ERRORS.items() if isinstance(exc, k)), None)
    if known is None:
        return await internal_error_handler(request, exc)
    status, kind, title, field, location = known
    extra: dict[str, Any] = {"job_id": getattr(exc, "job_id", None) or request.path_params.get("job_id")}
    if isinstance(exc, store.JobNotRunningError | store.DeleteRefusedError):
        extra["state"] = exc.state
    if isinstance(exc, store.NoCheckpointError | store.CheckpointPrunedError):
        extra["available"] = exc.available
    if isinstance(exc, store.CheckpointPrunedError):
        extra["pruned_at"] = exc.pruned_at.isoformat()
    if isinstance(exc, store.JobDeletedError):
        extra["deleted_at"] = exc.deleted_at.isoformat()
    detail = str(exc)
    if field is not None:
        found = _store_field_errors(exc, field, location)
        listed = listed_errors(found, len(found))
        extra |= {"errors": listed["errors"], "errors_omitted": listed["errors_omitted"]}
        detail = detail[: MAX_FIELD_CHARS * MAX_LISTED_ERRORS]
    problem = _problem(request, status, kind, detail, title, **extra)
    return problem_response(request, problem)


def _store_field_errors(exc: store.JobStoreError, field: str, location: str) -> list[FieldError]:
    """Name the field: pydantic's own errors when jobstore re-validated a spec, else the known one."""
    nested = getattr(exc, "errors", None) or []
    if nested:
        return [field_error({**e, "loc": (location, *e.get("loc", ()))}) for e in nested]
    return [
        FieldError(
            field=field or _field_from_message(str(exc)), location=location, message=str(exc), type=exc.code
        )
    ]


async def internal_error_handler(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    problem = _problem(request, 500, ProblemType.INTERNAL, "internal server error", "Internal Server Error")
    return problem_response(request, problem)


def field_error(error: Any) -> FieldError:
    """Name the field of one pydantic error: the dotted ``loc`` after its location part."""
    loc: Sequence[Any] = error.get("loc", ())
    location = str(loc[0]) if loc else "body"
    # A repeated query parameter's index says which value, not which field: leave it out there.
    parts = [str(p) for p in loc[1:] if location == "body" or not isinstance(p, int)]
    field = ".".join(parts) or _field_from_message(str(error.get("msg", "")))
    if error.get("type") == "json_invalid":
        field = field or "body"
    return FieldError(
        field=field, location=location, message=error.get("msg", ""), type=error.get("type", "")
    )


def _field_from_message(message: str) -> str:
    """Model-level checks ("unfreeze_backbone_epoch must not exceed epochs") have no ``loc``; their
    message starts with the field they are about, which is the field a client should highlight."""
    words = message.removeprefix("Value error, ").split()
    first = words[0] if words else ""
    named = (first.isidentifier() and "_" in first) or first in _SPEC_FIELDS_NO_UNDERSCORE
    return first if named else ""


# Fields named by model-level messages that have no underscore to recognise them by.
_SPEC_FIELDS_NO_UNDERSCORE = frozenset({"stage", "epochs", "lr", "name", "stage2", "stage3"})


def install(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, api_error_handler)
    app.add_exception_handler(HTTPException, http_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(IllegalTransitionError, transition_error_handler)
    app.add_exception_handler(store.JobStoreError, store_error_handler)
    app.add_exception_handler(Exception, internal_error_handler)


Responses = dict[int | str, dict[str, Any]]


def _problems(*codes: int) -> Responses:
    return {
        code: {"model": Problem, "content": {PROBLEM_JSON: {}}, "description": HTTPStatus(code).phrase}
        for code in codes
    }


def problems(*codes: int) -> Responses:
    """``responses=`` entries documenting problem bodies for these status codes."""
    return _problems(*codes)


PROBLEM_RESPONSES: Responses = _problems(404, 409, 422)
# Routes that read a body may also answer 400 (unparsable body), 413 (too large) and 429 (quota).
BODY_PROBLEM_RESPONSES: Responses = _problems(400, 404, 409, 413, 422, 429)


def with_problems(responses: Responses) -> Responses:
    """``responses=`` for a route with a body: its own extra answers plus the problem-details ones."""
    return {**responses, **BODY_PROBLEM_RESPONSES}


def document_problems(app: FastAPI) -> None:
    """Show problem bodies under ``application/problem+json`` in OpenAPI (FastAPI files a response
    model under the route's own media type, ``application/json``)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()  # cached by FastAPI after the first call; the move below is idempotent
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                for response in operation.get("responses", {}).values():
                    content = response.get("content", {})
                    if PROBLEM_JSON in content and "application/json" in content:
                        content[PROBLEM_JSON] = content.pop("application/json")
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
