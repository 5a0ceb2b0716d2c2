"""Dashboard sign-in: trade an API key for a signed, HttpOnly session cookie (+ a CSRF cookie).

The names of the cookies and of the CSRF header are a contract with the dashboard's JavaScript;
see docs/security.md.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response, status
from sqlalchemy.exc import IntegrityError

from api.auth import CSRF_COOKIE, SESSION_COOKIE, ActorDep, AuthVia
from api.auth.actor import Actor
from api.auth.identity import engine_of, failed_key, lookup, session_actor, settings_of, signer_of
from api.auth.problems import csrf_refused
from api.auth.schemas import SessionInfo, SignIn
from api.errors import Responses, problems
from api.settings import ApiSettings, CookieSecure
from jobstore.db import write_transaction
from jobstore.repo import keys, sessions
from jobstore.repo.keys import Role

router = APIRouter(prefix="/session", tags=["session"])

SIGN_IN_PROBLEMS: Responses = problems(400, 401, 403, 413, 422, 429)


@router.post("", response_model=SessionInfo, responses=SIGN_IN_PROBLEMS)
def sign_in(body: SignIn, request: Request, response: Response) -> SessionInfo:
    """Sign a browser in with an API key: sets the ocec_session (HttpOnly) and ocec_csrf cookies."""
    settings = settings_of(request)
    refuse_foreign_origin(request, settings)
    if not settings.auth_enabled:
        return info(Actor(name="anonymous", role=Role.ADMIN, via=AuthVia.OFF))
    key = lookup(request, lambda session: keys.find_key(session, body.key.strip()))
    if key is None:
        raise failed_key(request)
    signer = signer_of(request)
    value, claims = signer.issue(key.id, datetime.now(UTC), settings.session_ttl_seconds)
    secure = is_secure(request, settings)
    actor = session_actor(key, claims, signer)
    for name, cookie, http_only in ((SESSION_COOKIE, value, True), (CSRF_COOKIE, actor.csrf_token, False)):
        response.set_cookie(
            name, cookie or "", max_age=settings.session_ttl_seconds, path="/", secure=secure,
            httponly=http_only, samesite="strict",
        )  # fmt: skip
    return info(actor)


@router.get("/me", response_model=SessionInfo, responses=problems(401, 403, 429))
def who_am_i(actor: ActorDep) -> SessionInfo:
    """Who the current credentials (bearer key or session cookie) belong to."""
    return info(actor)


@router.delete("", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def sign_out(request: Request) -> Response:
    """Sign the browser out: the session ends on the server (its cookie stops working at once, even
    if a copy was kept) and both cookies are cleared."""
    revoke_presented_session(request)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    secure = is_secure(request, settings_of(request))
    for name, http_only in ((SESSION_COOKIE, True), (CSRF_COOKIE, False)):
        response.delete_cookie(name, path="/", secure=secure, httponly=http_only, samesite="strict")
    return response


def revoke_presented_session(request: Request) -> None:
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie or not settings_of(request).auth_enabled:
        return
    now = datetime.now(UTC)
    claims = signer_of(request).verify(cookie, now)
    if claims is None:
        return  # forged or expired: nothing to end
    try:
        with write_transaction(engine_of(request)) as session:
            sessions.revoke_session(
                session, nonce=claims.nonce, key_id=claims.key_id, expires_at=claims.expires_at, now=now
            )
    except IntegrityError:
        pass  # a concurrent sign-out of the same session recorded it


def info(actor: Actor) -> SessionInfo:
    return SessionInfo(
        auth=actor.via, name=actor.key_name or actor.name, role=actor.role, key_id=actor.key_id,
        expires_at=actor.expires_at, csrf_token=actor.csrf_token,
    )  # fmt: skip


def is_secure(request: Request, settings: ApiSettings) -> bool:
    if settings.cookie_secure == CookieSecure.AUTO:
        return request.url.scheme == "https"
    return settings.cookie_secure == CookieSecure.ALWAYS


def refuse_foreign_origin(request: Request, settings: ApiSettings) -> None:
    """Login CSRF: a browser on another site must not sign this browser in (with the other site's key)."""
    origin = request.headers.get("origin")
    if origin is None:
        return  # not a browser, or a same-origin GET-like navigation: nothing to check
    own = f"{request.url.scheme}://{request.headers.get('host', '')}"
    if origin != own and origin not in settings.cors_origins:
        raise csrf_refused(f"sign-in from the foreign origin {origin!r} is refused")
