"""Bodies of the sign-in and key-management endpoints (a key's hash never leaves the server)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.auth.actor import AuthVia
from jobstore.repo import keys
from jobstore.repo.keys import Role

PresentedKey = Annotated[str, Field(min_length=1, max_length=keys.MAX_KEY_LENGTH)]


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: PresentedKey = Field(description="an API key (ocec_…)")


class SessionInfo(BaseModel):
    """Who the current credentials are; ``csrf_token`` goes in the X-CSRF-Token header of writes."""

    auth: AuthVia
    name: str
    role: Role
    key_id: str | None = None
    expires_at: datetime | None = None
    csrf_token: str | None = None


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=keys.NAME_MAX)]
    role: Role

    @field_validator("name")
    @classmethod
    def _printable(cls, value: str) -> str:
        return keys.check_name(value)


class KeyPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    role: Role
    prefix: str = Field(description="the key's first characters, to recognise it")
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class KeyCreated(KeyPublic):
    key: str = Field(description="the key itself: shown this once, only its hash is stored")
