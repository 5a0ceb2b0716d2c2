"""Webhook URLs a client or an operator names: the server will call them, so only plain http(s)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field

URL_MAX = 2048


def check_webhook_url(value: str) -> str:
    """``value`` if it is an absolute http or https URL with a host and no credentials, else ValueError."""
    if any(ord(char) < 0x21 or ord(char) == 0x7F for char in value):
        raise ValueError("must not contain spaces or control characters")
    try:
        parts = urlsplit(value)
        port = parts.port  # raises on a bad port
    except ValueError as exc:
        raise ValueError(f"not a URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError("must be an http:// or https:// URL")
    if not parts.hostname:
        raise ValueError("must name a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry credentials (the signature authenticates the server)")
    if port == 0:
        raise ValueError("port 0 is not a port")
    return value


WebhookUrl = Annotated[str, Field(min_length=8, max_length=URL_MAX), AfterValidator(check_webhook_url)]
