"""What the client raises: a refusal with its RFC 9457 problem details, a server out of reach, a wait
that cannot end as asked. All are ``OcecJobsError``, so one ``except`` catches the lot."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx


class OcecJobsError(Exception):
    """Every error of ``ocec_jobs.client``."""


class ApiError(OcecJobsError):
    """The server refused a request (4xx) or failed (5xx): its problem details (docs/api.md, Errors).

    ``errors`` lists the fields a 422 names (``{"field": "lr", "message": …}``); ``body`` is the whole
    answer (a 409 also carries the job's ``state``). An answer that is not problem details still gives
    ``status`` and a ``title``/``detail`` from the HTTP reason and the text.
    """

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        type: str = "about:blank",
        errors: list[dict[str, Any]] | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        self.status, self.title, self.detail, self.type = status, title, detail, type
        self.errors = errors or []
        self.body = body or {}
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """``404 Not Found: no job with id 'x'`` (+ ``[field: message; …]`` for the fields a 422 names)."""
        named = (f"{e.get('field') or e.get('location')}: {e.get('message')}" for e in self.errors[:5])
        fields = "; ".join(named)
        shown = f" [{fields}]" if fields and fields not in self.detail else ""
        return " ".join(f"{self.status} {self.title}: {self.detail}{shown}".split())

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            text = response.text.strip()
            first = text.splitlines()[0][:200] if text else response.reason_phrase
            return cls(response.status_code, response.reason_phrase, first)
        return cls(
            response.status_code,
            str(body.get("title") or response.reason_phrase),
            str(body.get("detail") or body.get("title") or response.reason_phrase),
            type=str(body.get("type") or "about:blank"),
            errors=[e for e in body.get("errors") or [] if isinstance(e, dict)],
            body=body,
        )


class UnreachableError(OcecJobsError):
    """No answer: the server is down, the URL is wrong, the network failed or it timed out."""

    def __init__(self, url: str, reason: str) -> None:
        self.url, self.reason = url, reason
        super().__init__(f"cannot reach the ocec-jobs server at {url} ({reason})")


class UnexpectedAnswerError(OcecJobsError):
    """An answer that is not what the API documents (not JSON where JSON was due): not an ocec-jobs server?"""


class JobEndedError(OcecJobsError):
    """``wait`` for states the job can no longer reach: it ended in another one. ``job`` is its status."""

    def __init__(self, job: dict[str, Any], wanted: tuple[str, ...]) -> None:
        self.job = job
        super().__init__(
            f"job {job.get('id')} ended {job.get('state')} ({job.get('state_reason') or '-'}), "
            f"not {' or '.join(wanted)}"
        )


class WaitTimeoutError(OcecJobsError, TimeoutError):
    """``wait`` ran out of time; ``job`` is the last status read."""

    def __init__(self, job: dict[str, Any], wanted: tuple[str, ...], timeout: float) -> None:
        self.job = job
        super().__init__(
            f"job {job.get('id')} still {job.get('state')} after {timeout:g} s "
            f"(waited for {' or '.join(wanted)})"
        )
