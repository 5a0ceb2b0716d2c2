"""The answer of the health and readiness probes."""

from __future__ import annotations

from pydantic import BaseModel, Field


class HealthStatus(BaseModel):
    status: str = Field(description="ok; degraded (/readyz: no live worker, see checks.workers)")
    checks: dict[str, str] = Field(default_factory=dict)
