"""``GET /``: a placeholder page until the dashboard lands (its engineer replaces this module)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["dashboard"])

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ocec-jobs</title></head>
<body><h1>ocec-jobs</h1>
<p>The training-job API is running. See <a href="/docs">/docs</a> for the endpoints and
<a href="/jobs">/jobs</a> for the jobs.</p></body></html>
"""


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def index() -> HTMLResponse:
    """Show the placeholder page."""
    return HTMLResponse(PAGE)
