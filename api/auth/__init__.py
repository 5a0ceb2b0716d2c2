"""API keys with roles, dashboard sessions with CSRF protection (see docs/security.md)."""

from api.auth.actor import ANONYMOUS, Actor, AuthVia
from api.auth.cookies import CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE
from api.auth.identity import ActorDep, AdminDep, OperatorDep, get_actor, require
from jobstore.repo.keys import Role

__all__ = [
    "ANONYMOUS",
    "CSRF_COOKIE",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "Actor",
    "ActorDep",
    "AdminDep",
    "AuthVia",
    "OperatorDep",
    "Role",
    "get_actor",
    "require",
]
