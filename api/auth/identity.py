"""The one dependency that says who is acting, and what every route needs before it runs.

``get_actor`` authenticates (bearer key, else dashboard session cookie) and enforces the minimum
role of the HTTP method: ``viewer`` to read (GET, HEAD), ``operator`` for anything that changes
state (every other method). Routers that do not ask for the actor get it as a router dependency
(``api.main``), so a new mutating route cannot forget the check. ``require(role)`` adds a higher bar.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Annotated

import anyio
from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlmodel import Session

from api.auth.actor import ANONYMOUS, Actor, AuthVia
from api.auth.cookies import CSRF_HEADER, SESSION_COOKIE, SessionClaims, SessionSigner
from api.auth.failures import FailureLimiter, too_many_failures
from api.auth.problems import csrf_refused, forbidden, unauthenticated
from api.auth.secret import session_secret
from api.errors import ApiError, invalid_field
from api.settings import ApiSettings
from jobstore.db import read_connection, read_session, write_transaction
from jobstore.models import ApiKey
from jobstore.repo import keys, sessions
from jobstore.text import first_unsafe

log = logging.getLogger(__name__)

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ACTOR_HEADER = "X-Actor"
ACTOR_MAX = 255
ACTOR_SCOPE_KEY = "ocec.actor"  # set by the server only: a client cannot put anything in the scope
# Shown in OpenAPI (the /docs "Authorize" button); the headers themselves are parsed below so a
# malformed Authorization header is a 401, not silently "no credentials".
bearer_scheme = HTTPBearer(
    auto_error=False, scheme_name="ApiKey", description="Authorization: Bearer ocec_… (an API key)"
)
session_scheme = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    scheme_name="Session",
    description="dashboard session (POST /session)",
)
_state_lock = threading.Lock()


def settings_of(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings
    return settings


def engine_of(request: Request) -> Engine:
    engine: Engine = request.app.state.resources.engine
    return engine


def signer_of(request: Request) -> SessionSigner:
    """The app's session signer, made on first use (the secret file is read or created once)."""
    state = request.app.state
    with _state_lock:
        signer: SessionSigner | None = getattr(state, "session_signer", None)
        if signer is None:
            signer = SessionSigner(session_secret(settings_of(request)))
            state.session_signer = signer
    return signer


def failed_key(request: Request) -> ApiError:
    """The answer to a wrong key: 401, or 429 once its address failed too often (``failures``)."""
    address = request.client.host if request.client else "unknown"
    state = request.app.state
    with _state_lock:
        limiter: FailureLimiter | None = getattr(state, "auth_failures", None)
        if limiter is None:
            settings = settings_of(request)
            limiter = FailureLimiter(settings.auth_failure_limit, settings.auth_failure_window_seconds)
            state.auth_failures = limiter
    wait = limiter.fail(address, time.monotonic())
    if wait is not None:
        return too_many_failures(address, wait)
    return unauthenticated("unknown or revoked API key", invalid=True)


def required_role(method: str) -> keys.Role:
    return keys.Role.VIEWER if method.upper() in READ_METHODS else keys.Role.OPERATOR


async def get_actor(
    request: Request,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    _session: Annotated[str | None, Depends(session_scheme)],
) -> Actor:
    """The authenticated actor, allowed to use this HTTP method (401 / 403 problems otherwise).
    ``api.auth.gate`` finds it before the body is read; the route's own call reuses its answer on
    the event loop (no thread hop for it), and looks it up in a worker thread only if none ran."""
    known = request.scope.get(ACTOR_SCOPE_KEY)
    if isinstance(known, Actor):
        return known
    return await anyio.to_thread.run_sync(authenticate, request)


def authenticate(request: Request) -> Actor:
    """``get_actor``'s blocking part (a key look-up): the actor, kept on the request."""
    known = request.scope.get(ACTOR_SCOPE_KEY)
    if isinstance(known, Actor):
        return known
    actor = _checked_actor(request)
    request.scope[ACTOR_SCOPE_KEY] = actor
    return actor


def _checked_actor(request: Request) -> Actor:
    settings = settings_of(request)
    if not settings.auth_enabled:
        return unauthenticated_actor(request)
    actor = _authenticate(request, settings)
    needed = required_role(request.method)
    if not actor.role.allows(needed):
        raise forbidden(actor.role, needed)
    return actor


def unauthenticated_actor(request: Request) -> Actor:
    """Auth off: anyone is an admin, named by the X-Actor header (not in the schema: it means nothing
    while auth is on), cut to the length an event's actor may have."""
    name = (request.headers.get(ACTOR_HEADER) or "").strip()[:ACTOR_MAX]
    if first_unsafe(name) is not None:  # it is recorded on events and shown like a name
        raise invalid_field(ACTOR_HEADER, "must not contain control characters", "value_error", "header")
    return Actor(name=name or ANONYMOUS, role=keys.Role.ADMIN, via=AuthVia.OFF)


def _authenticate(request: Request, settings: ApiSettings) -> Actor:
    authorization = request.headers.get("authorization")
    if authorization is not None:
        return _bearer_actor(request, settings, authorization)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        return _session_actor(request, settings, cookie)
    raise unauthenticated("send an API key as 'Authorization: Bearer <key>' or sign in (POST /session)")


def _bearer_actor(request: Request, settings: ApiSettings, authorization: str) -> Actor:
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthenticated("the Authorization header must be 'Bearer <key>'", invalid=True)
    with read_connection(engine_of(request)) as connection:  # one statement: no session, no BEGIN
        key = keys.find_key(connection, token.strip())
    if key is None:
        raise failed_key(request)
    touch(request, settings, key)
    return _actor(key, AuthVia.BEARER)


def _session_actor(request: Request, settings: ApiSettings, cookie: str) -> Actor:
    signer = signer_of(request)
    claims = signer.verify(cookie, datetime.now(UTC))
    if claims is None:
        raise unauthenticated("the dashboard session is invalid or has expired: sign in again", invalid=True)
    key = lookup(request, lambda session: session_key(session, claims))
    if key is None:
        raise unauthenticated("this session was signed out or its key revoked: sign in again", invalid=True)
    if request.method.upper() not in READ_METHODS and not signer.csrf_matches(
        claims, request.headers.get(CSRF_HEADER)
    ):
        raise csrf_refused(f"a signed-in browser must send the {CSRF_HEADER} header (the ocec_csrf cookie)")
    touch(request, settings, key)
    return session_actor(key, claims, signer)


def session_actor(key: ApiKey, claims: SessionClaims, signer: SessionSigner) -> Actor:
    return replace(
        _actor(key, AuthVia.SESSION),
        expires_at=claims.expires_at,
        csrf_token=signer.csrf_token(claims),
        session_nonce=claims.nonce,
    )


def session_key(session: Session, claims: SessionClaims) -> ApiKey | None:
    """The active key of a session that was not signed out, else ``None``."""
    if sessions.is_revoked(session, claims.nonce):
        return None
    return keys.active_key(session, claims.key_id)


def still_valid(engine: Engine, actor: Actor, now: datetime) -> bool:
    """Whether the credentials an actor was authenticated with still hold (an open stream asks)."""
    if actor.via is AuthVia.OFF or actor.key_id is None:
        return True
    if actor.expires_at is not None and actor.expires_at <= now:
        return False
    with read_session(engine) as session:
        if actor.session_nonce is not None and sessions.is_revoked(session, actor.session_nonce):
            return False
        return keys.active_key(session, actor.key_id) is not None


def _actor(key: ApiKey, via: AuthVia) -> Actor:
    return Actor(
        name=keys.actor_label(key),
        owner=key.id,
        role=keys.Role(key.role),
        via=via,
        key_id=key.id,
        key_name=key.name,
    )


def lookup(request: Request, find: Callable[..., ApiKey | None]) -> ApiKey | None:
    with read_session(engine_of(request)) as session:
        return find(session)


def touch(request: Request, settings: ApiSettings, key: ApiKey) -> None:
    """Record that the key was used, at most once per ``key_touch_seconds`` (not a write per GET)."""
    now = datetime.now(UTC)
    interval = timedelta(seconds=settings.key_touch_seconds)
    if not keys.needs_touch(key, now, interval):
        return
    try:
        with write_transaction(engine_of(request)) as session:
            keys.touch_key(session, key_id=key.id, now=now, min_interval=interval)
    except Exception:  # bookkeeping must never fail the request it is about
        log.warning("could not record the use of API key %s", key.id, exc_info=True)


def require(role: keys.Role) -> Callable[[Actor], Awaitable[Actor]]:
    """A dependency: the actor, if its role is at least ``role`` (403 otherwise)."""

    async def dependency(actor: Annotated[Actor, Depends(get_actor)]) -> Actor:  # no I/O: no thread
        if not actor.role.allows(role):
            raise forbidden(actor.role, role)
        return actor

    return dependency


ActorDep = Annotated[Actor, Depends(get_actor)]
OperatorDep = Annotated[Actor, Depends(require(keys.Role.OPERATOR))]
AdminDep = Annotated[Actor, Depends(require(keys.Role.ADMIN))]
