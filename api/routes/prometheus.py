"""GET /metrics: the app's Prometheus metrics in the text exposition format (``api.observability``).

Protected like every data route (a viewer key): Prometheus sends it with
``authorization: {credentials_file: …}`` in its scrape config (docs/observability.md).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from api.observability import Observability

router = APIRouter(tags=["observability"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_PLAIN_0_0_4: {}}, "description": "Prometheus text format"}},
)
def prometheus_metrics(request: Request) -> Response:
    """Queue length, jobs by state, running epochs, epoch durations, worker heartbeats, API latency,
    disk use (run folders, per job and in total, and uploads)."""
    observability: Observability = request.app.state.observability
    return Response(generate_latest(observability.registry), media_type=CONTENT_TYPE_PLAIN_0_0_4)
