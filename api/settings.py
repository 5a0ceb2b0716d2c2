"""The API role's settings: the shared ``jobstore`` settings plus what only the HTTP side needs."""

from __future__ import annotations

from pydantic import Field

from jobstore.settings import Settings


class ApiSettings(Settings):
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins allowed by CORS (OCEC_CORS_ORIGINS, JSON list); none by default.",
    )
    stream_poll_seconds: float = Field(
        default=1.0, gt=0, le=60, allow_inf_nan=False, description="How often an SSE stream polls the DB."
    )
    stream_keepalive_seconds: float = Field(
        default=15.0,
        gt=0,
        le=300,
        allow_inf_nan=False,
        description="Idle time before an SSE keep-alive comment.",
    )
    stream_retry_ms: int = Field(
        default=2000, ge=0, le=600_000, description="SSE reconnection delay advised to clients."
    )
    stream_page_size: int = Field(default=200, ge=1, le=10_000, description="Rows read per SSE poll.")


def api_settings(settings: Settings | None = None) -> ApiSettings:
    """``ApiSettings`` from the environment, or extending given shared settings (tests build those)."""
    if isinstance(settings, ApiSettings):
        return settings
    if settings is None:
        return ApiSettings()
    return ApiSettings(**settings.model_dump())
