"""The API role's settings: the shared ``jobstore`` settings plus what only the HTTP side needs."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, SecretStr

from jobstore.settings import Settings


class CookieSecure(StrEnum):
    AUTO = "auto"  # Secure when the sign-in request came over HTTPS
    ALWAYS = "always"
    NEVER = "never"


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
    auth_failure_limit: int = Field(
        default=20, ge=1, le=1_000_000, description="Failed keys per client address and window before 429."
    )
    auth_failure_window_seconds: float = Field(
        default=60.0,
        gt=0,
        le=86_400,
        allow_inf_nan=False,
        description="The window in which OCEC_AUTH_FAILURE_LIMIT failed keys are counted.",
    )
    stream_auth_recheck_seconds: float = Field(
        default=5.0,
        gt=0,
        le=300,
        allow_inf_nan=False,
        description="How often an open SSE stream re-checks its key or session (revoked: it ends).",
    )
    session_secret: SecretStr | None = Field(
        default=None,
        min_length=32,
        description="Signs dashboard session cookies (OCEC_SESSION_SECRET); default: <home>/session_secret.",
    )
    session_ttl_seconds: int = Field(
        default=12 * 3600, ge=60, le=30 * 86400, description="Lifetime of a dashboard session."
    )
    cookie_secure: CookieSecure = Field(
        default=CookieSecure.AUTO, description="Secure flag of the session cookies: auto, always, never."
    )
    key_touch_seconds: float = Field(
        default=60.0,
        ge=0,
        le=86400,
        allow_inf_nan=False,
        description="last_used_at of a key is written at most this often.",
    )
    upload_max_files: int = Field(
        default=200_000,
        ge=1,
        le=10_000_000,
        description="Most images (parquet rows or zip entries) in a dataset upload.",
    )
    upload_max_extracted_bytes: int = Field(
        default=1 << 33, ge=1024, description="Largest content of an uploaded zip dataset once extracted."
    )
    upload_max_image_pixels: int = Field(
        default=1 << 24, ge=1, description="Largest image (width x height) in a dataset upload."
    )


def api_settings(settings: Settings | None = None) -> ApiSettings:
    """``ApiSettings`` from the environment, or extending given shared settings (tests build those)."""
    if isinstance(settings, ApiSettings):
        return settings
    if settings is None:
        return ApiSettings()
    return ApiSettings(**settings.model_dump())
