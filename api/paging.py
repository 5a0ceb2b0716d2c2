"""The one page-size rule of every list: the client's ``limit``, else the list's default, never more
than ``OCEC_MAX_PAGE_SIZE`` (a larger ``limit`` is capped, not refused; below 1 is a 422)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from jobstore.settings import Settings

PageLimit = Annotated[int | None, Query(ge=1, description="page size (bounded by the server's maximum)")]
PageCursor = Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page")]


def page_size(settings: Settings, limit: int | None, *, whole: bool = False) -> int:
    """Rows on one page. ``whole``: a job's metrics and events, which clients read to the end, default
    to the largest page rather than ``OCEC_DEFAULT_PAGE_SIZE``."""
    default = settings.max_page_size if whole else settings.default_page_size
    return min(limit or default, settings.max_page_size)
