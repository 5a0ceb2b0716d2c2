"""The internal dashboard's HTML pages: shells that hold no job data.

Every page is a Jinja2 template (autoescaped) that loads the project's own ES modules from
``/static``; the modules fetch the JSON API with the browser's credentials and render every
user-controlled string as text. The pages themselves carry no job data, so they need no session:
a data call answered 401 sends the browser to the sign-in page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import urljoin, urlsplit

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from api.deps import JOB_ID_PATTERN
from api.job_form import job_form
from api.job_presets import PRESETS

PACKAGE = Path(__file__).resolve().parents[1]
TEMPLATES = Jinja2Templates(directory=PACKAGE / "templates")
STATIC_DIR = PACKAGE / "static"
ASSET_VERSION = "4"  # bump with the static files, so browsers drop cached copies

router = APIRouter(tags=["dashboard"], include_in_schema=False)

JobId = Annotated[str, PathParam(pattern=JOB_ID_PATTERN)]
NextPath = Annotated[str, Query(max_length=2000)]


def mount_static(app: FastAPI) -> None:
    """Serve ``api/static`` (chart code, CSS) at ``/static``: nothing comes from a CDN."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


def page(request: Request, template: str, **context: object) -> HTMLResponse:
    """A page shell; ``context`` values reach the page only through autoescaped ``data-*`` attributes."""
    return TEMPLATES.TemplateResponse(
        request, template, {"asset_version": ASSET_VERSION, **context}, headers={"Cache-Control": "no-store"}
    )


@router.get("/", response_class=HTMLResponse)
def jobs_page(request: Request) -> HTMLResponse:
    """The jobs list: state, stage, progress, best F1, filters, a new-job form, compare selection."""
    return page(request, "jobs.html", nav="jobs", form=job_form(), presets=PRESETS)


@router.get("/ui/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, job_id: JobId) -> HTMLResponse:
    """One job: status, charts with stage boundaries, timeline, controls, spec, checkpoints."""
    return page(request, "job.html", nav="jobs", job_id=job_id)


@router.get("/ui/compare", response_class=HTMLResponse)
def compare_page(request: Request) -> HTMLResponse:
    """Two or more jobs' curves on one chart (the job ids are read from the query by the page)."""
    return page(request, "compare.html", nav="compare")


@router.get("/ui/evaluations", response_class=HTMLResponse)
def evaluations_page(request: Request) -> HTMLResponse:
    """Evaluations: a form that queues one, and the list with their headline numbers."""
    return page(request, "evaluations.html", nav="evaluations")


@router.get("/ui/evaluations/{evaluation_id}", response_class=HTMLResponse)
def evaluation_page(request: Request, evaluation_id: JobId) -> HTMLResponse:
    """One evaluation: progress while it runs, then curves, threshold slider, matrix, worst crops."""
    return page(request, "evaluation.html", nav="evaluations", evaluation_id=evaluation_id)


@router.get("/ui/signin", response_class=HTMLResponse)
def signin_page(request: Request, next: NextPath = "/") -> HTMLResponse:
    """Sign in with an API key (the session cookie is set by the API's session endpoint)."""
    return page(request, "signin.html", nav="signin", next_path=_local(next))


def _local(target: str) -> str:
    """Only a path on this server may follow a sign-in (no open redirect to another origin).

    The target is read the way a browser's URL parser (WHATWG) reads it: leading and trailing
    control characters and spaces dropped, tabs and newlines dropped anywhere (``/%09/evil`` is
    ``//evil``), a backslash taken as a slash (``/\\evil`` is ``//evil``). What is left must be a
    path (no scheme, no ``//`` host) that resolves on this origin; the page gets it without the
    dropped characters (``signin_page.js`` checks again with the browser's own parser)."""
    cleaned = target.strip(_C0_AND_SPACE).translate(_TAB_NEWLINE)
    as_read = cleaned.replace("\\", "/")
    if not as_read.startswith("/") or as_read.startswith("//"):
        return "/"
    resolved = urlsplit(urljoin(_HERE, as_read))
    return cleaned if (resolved.scheme, resolved.netloc) == ("http", _HERE_HOST) else "/"


_C0_AND_SPACE = "".join(map(chr, range(0x21)))
_TAB_NEWLINE = str.maketrans("", "", "\t\n\r")
_HERE_HOST = "ocec.invalid"
_HERE = f"http://{_HERE_HOST}/ui/signin"
