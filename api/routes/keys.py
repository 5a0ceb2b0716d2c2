"""Key management over HTTP, for admins (the same as ``ocec-jobs keys``): list, create, revoke."""

from __future__ import annotations

from fastapi import APIRouter, status

from api.auth import AdminDep
from api.auth.schemas import KeyCreate, KeyCreated, KeyPublic
from api.deps import TransactionDep
from api.errors import ApiError, ProblemType, problems
from jobstore.repo import keys

router = APIRouter(prefix="/keys", tags=["keys"])


@router.get("", response_model=list[KeyPublic], responses=problems(401, 403, 429))
def list_keys(_admin: AdminDep, transaction: TransactionDep) -> list[KeyPublic]:
    """List every API key (revoked ones too); never the key itself."""
    with transaction() as tx:
        return [KeyPublic.model_validate(key) for key in keys.list_keys(tx)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=KeyCreated,
    responses=problems(400, 401, 403, 413, 422, 429),
)
def create_key(body: KeyCreate, _admin: AdminDep, transaction: TransactionDep) -> KeyCreated:
    """Create a key; the answer holds the key itself, this once."""
    with transaction() as tx:
        new = keys.create_key(tx, name=body.name, role=body.role)
        public = KeyPublic.model_validate(new.record)
    return KeyCreated(**public.model_dump(), key=new.secret)


@router.delete("/{key_id}", response_model=KeyPublic, responses=problems(401, 403, 404, 409, 422, 429))
def revoke_key(key_id: str, _admin: AdminDep, transaction: TransactionDep) -> KeyPublic:
    """Revoke a key: it and every session signed in with it stop working now. The last active admin
    key cannot be revoked (409)."""
    try:
        with transaction() as tx:
            return KeyPublic.model_validate(keys.revoke_key(tx, key_id=key_id))
    except keys.ApiKeyNotFoundError as exc:
        raise ApiError(404, ProblemType.NOT_FOUND, str(exc), "API key not found") from exc
    except keys.LastAdminKeyError as exc:
        raise ApiError(409, ProblemType.LAST_ADMIN_KEY, str(exc), "Last admin key") from exc
