"""Settings shared by every role (API, worker, reaper, CLI), from the environment.

``get_settings()`` is the cached process-wide instance; tests build ``Settings(...)`` directly.
Environment variables are ``OCEC_<FIELD>`` (``OCEC_LEASE_SECONDS=20``), except the two URLs that
deployments conventionally name without a prefix: ``DATABASE_URL`` and ``REDIS_URL``.

Time budget for a dead worker: its last heartbeat renews the lease to ``heartbeat + lease_seconds``;
the reaper runs every ``reaper_interval_seconds``; so a lost job is ``interrupted`` at most
``lease_seconds + reaper_interval_seconds`` after its last heartbeat (45 s by default).
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from jobstore.notify.urls import WebhookUrl

Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]

_DEFAULT_HOME = ".ocec-jobs"
_ROOT_FOLDERS = {"data_root": "data", "model_root": "models", "runs_root": "runs", "upload_root": "uploads"}
_PG_SCHEMES = ("postgres", "postgresql", "postgresql+psycopg2", "postgresql+psycopg")
PG_DRIVER_SCHEME = "postgresql+psycopg"


def normalize_database_url(url: str) -> str:
    """Point every PostgreSQL URL at the psycopg (v3) driver; leave others alone."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme in _PG_SCHEMES:
        return f"{PG_DRIVER_SCHEME}://{rest}"
    return url


class AuthMode(StrEnum):
    ON = "on"
    OFF = "off"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="OCEC_", extra="ignore", validate_by_name=True, validate_by_alias=True
    )

    home: Path = Field(
        default=Path(_DEFAULT_HOME),
        validation_alias=AliasChoices("OCEC_HOME"),
        description="State directory of the embedded setup: SQLite files, runs, uploads.",
    )
    database_url: str = Field(
        default="",
        validation_alias=AliasChoices("DATABASE_URL", "OCEC_DATABASE_URL"),
        description="SQLAlchemy URL. Default: sqlite:///<home>/ocec.db. postgres URLs use psycopg 3.",
    )
    broker_url: str = Field(
        default="",
        validation_alias=AliasChoices("REDIS_URL", "OCEC_BROKER_URL"),
        description="Celery broker: REDIS_URL, else OCEC_BROKER_URL, else sqla+sqlite:///<home>/broker.db.",
    )
    # The roots default to folders under ``home`` (filled in by ``_roots_under_home``).
    data_root: Path = Field(default=Path(), description="Datasets live here (default <home>/data).")
    model_root: Path = Field(default=Path(), description="Pretrained models (default <home>/models).")
    runs_root: Path = Field(default=Path(), description="Run dirs and checkpoints (default <home>/runs).")
    upload_root: Path = Field(default=Path(), description="HTTP uploads (default <home>/uploads).")
    queue: str = Field(
        default="gpu",
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="Celery queue.",
    )

    heartbeat_seconds: Seconds = Field(default=10.0, le=300, description="Lease renewal period.")
    lease_seconds: Seconds = Field(
        default=30.0, le=3600, description="Lease length; at least 2 heartbeats so one late beat is harmless."
    )
    command_check_seconds: float = Field(
        default=0.02,
        ge=0,
        le=10,
        allow_inf_nan=False,
        description="Between batches, a running job looks for new operator commands (pause, cancel, "
        "force) at most this often (0: after every batch); at every epoch boundary it always looks.",
    )
    reaper_interval_seconds: Seconds = Field(default=15.0, le=600, description="How often the reaper runs.")
    redispatch_after_seconds: Seconds = Field(
        default=120.0,
        description="A queued job not claimed this long after dispatch is sent again if the queue stalled.",
    )
    redispatch_max_seconds: Seconds = Field(
        default=1800.0, description="Cap of the doubling wait between re-dispatches of one queued job."
    )
    infra_retry_budget: int = Field(
        default=3,
        ge=0,
        le=100,
        description="Automatic re-queues after a lost worker. Errors in the job itself are never retried.",
    )
    preempt_budget: int = Field(
        default=10,
        ge=0,
        le=1000,
        description="Clean preemptions (SIGTERM) in a row without a completed epoch before the job fails; "
        "preemptions with an epoch completed in between are free (a deploy is not a failure).",
    )

    keep_epoch_checkpoints: int = Field(
        default=5,
        ge=0,
        le=10_000,
        description="Epoch checkpoints (epochs/epoch_NNNN.pt) kept per job, the newest; older ones are "
        "pruned by the reaper loop and `ocec-jobs gc`. best, last, interrupt and stage entries are always "
        "kept, and so is any file a resume or a fork still names. A job's spec may set its own "
        "(keep_epochs).",
    )

    auth: AuthMode = Field(
        default=AuthMode.ON,
        description="API keys required: on (the default) or off (only where nobody else can reach it).",
    )
    max_queued_jobs_per_key: int = Field(default=100, ge=1, le=100_000, description="Queued jobs per owner.")
    max_body_bytes: int = Field(
        default=1 << 20,
        ge=1024,
        le=1 << 30,
        description="Ceiling of the per-route JSON body caps (64 KiB for a job spec).",
    )
    max_upload_bytes: int = Field(default=1 << 32, ge=1024, description="Largest uploaded file.")
    default_page_size: int = Field(default=50, ge=1, le=10_000, description="List page size without a limit.")
    max_page_size: int = Field(default=500, ge=1, le=10_000, description="Largest list page (capped).")
    sqlite_busy_timeout_ms: int = Field(
        default=30_000, ge=0, le=600_000, description="How long a SQLite writer waits for the lock."
    )
    checkpoint_every: int = Field(
        default=1,
        ge=1,
        le=10_000,
        description="A job writes its epochs/epoch_NNNN.pt every N epochs unless its spec says "
        "(checkpoint_every); last, best and the stage entries are written whatever N is.",
    )

    notify_urls: list[WebhookUrl] = Field(
        default_factory=list,
        max_length=20,
        description="Webhooks told of every job's notifications (JSON list of http/https URLs; the "
        "server calls them). Needs notify_secret. docs/notifications.md",
    )
    notify_secret: SecretStr | None = Field(
        default=None,
        min_length=16,
        max_length=256,
        description="Signs the notifications sent to notify_urls (HMAC-SHA256); never shown by the API.",
    )
    notify_poll_seconds: Seconds = Field(
        default=1.0, le=60, description="How often the notifier (it runs with the reaper) looks for work."
    )
    notify_backoff_seconds: Seconds = Field(
        default=5.0, le=3600, description="Wait before the first retry of a failed delivery; it doubles."
    )
    notify_backoff_max_seconds: Seconds = Field(
        default=900.0, le=86400, description="Cap of the doubling wait between delivery attempts."
    )
    notify_max_attempts: int = Field(
        default=10, ge=1, le=50, description="Delivery attempts of one notification before it is failed."
    )
    notify_timeout_seconds: Seconds = Field(
        default=5.0, le=60, description="Connect and read timeout of one delivery attempt."
    )

    @model_validator(mode="before")
    @classmethod
    def _roots_under_home(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        home = Path(data.get("home") or data.get("OCEC_HOME") or _DEFAULT_HOME)
        for name, folder in _ROOT_FOLDERS.items():
            if not data.get(name):
                data[name] = home / folder
        return data

    @model_validator(mode="after")
    def _derive(self) -> Self:
        self.home = self.home.expanduser().resolve()
        for name in _ROOT_FOLDERS:
            setattr(self, name, getattr(self, name).expanduser().resolve())
        self.database_url = normalize_database_url(self.database_url or f"sqlite:///{self.home / 'ocec.db'}")
        self.broker_url = self.broker_url or f"sqla+sqlite:///{self.home / 'broker.db'}"
        if self.lease_seconds < 2 * self.heartbeat_seconds:
            raise ValueError("lease_seconds must be at least 2 x heartbeat_seconds")
        if self.redispatch_max_seconds < self.redispatch_after_seconds:
            raise ValueError("redispatch_max_seconds must be >= redispatch_after_seconds")
        if self.default_page_size > self.max_page_size:
            raise ValueError("default_page_size must be <= max_page_size")
        if self.notify_urls and self.notify_secret is None:
            raise ValueError("notify_urls needs notify_secret (the receivers check the signature with it)")
        if self.notify_backoff_max_seconds < self.notify_backoff_seconds:
            raise ValueError("notify_backoff_max_seconds must be >= notify_backoff_seconds")
        return self

    @property
    def worker_lost_within_seconds(self) -> float:
        """Upper bound from a worker's last heartbeat to its job being ``interrupted``."""
        return self.lease_seconds + self.reaper_interval_seconds

    @property
    def auth_enabled(self) -> bool:
        return self.auth != AuthMode.OFF  # fails closed: only an explicit "off" turns auth off

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
