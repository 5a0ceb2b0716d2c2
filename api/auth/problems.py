"""The problems auth answers with: 401 (who are you?) and 403 (not allowed / no CSRF token)."""

from __future__ import annotations

from api.errors import ApiError, ProblemType
from jobstore.repo.keys import Role

REALM = 'Bearer realm="ocec-jobs"'
INVALID = f'{REALM}, error="invalid_token"'


def unauthenticated(detail: str, *, invalid: bool = False) -> ApiError:
    """401 with ``WWW-Authenticate``; ``invalid`` when credentials were sent but are no good."""
    return ApiError(
        401,
        ProblemType.UNAUTHENTICATED,
        detail,
        "Authentication required",
        headers={"WWW-Authenticate": INVALID if invalid else REALM},
    )


def forbidden(role: Role, required: Role) -> ApiError:
    detail = f"this needs the {required} role; the key's role is {role}"
    return ApiError(
        403, ProblemType.FORBIDDEN, detail, "Forbidden", role=role.value, required_role=required.value
    )


def csrf_refused(detail: str) -> ApiError:
    return ApiError(403, ProblemType.CSRF, detail, "CSRF check failed")
