"""Dependencies as named types, so route signatures read like declarations."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy import Engine
from sqlmodel import Session

# The identity lives in api.auth; routes import it from here, with the other dependencies.
from api.auth import Actor as Actor
from api.auth import ActorDep as ActorDep
from api.auth import AdminDep as AdminDep
from api.auth import OperatorDep as OperatorDep
from api.dispatch import Dispatcher
from api.lifespan import Resources
from api.settings import ApiSettings
from jobstore import repo
from jobstore.db import TransactionFactory, read_session, transaction_factory
from jobstore.models import Job


async def get_resources(request: Request) -> Resources:
    # The getters below only read app state: async, so FastAPI runs them without a thread hop.
    resources: Resources = request.app.state.resources
    return resources


async def get_settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings
    return settings


async def get_engine(resources: Annotated[Resources, Depends(get_resources)]) -> Engine:
    return resources.engine


async def get_dispatcher(resources: Annotated[Resources, Depends(get_resources)]) -> Dispatcher:
    return resources.dispatcher


def get_session(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Session]:
    """A read session that ends when the route function returns (before the response streams)."""
    with read_session(engine) as session:
        yield session


async def get_transaction(engine: Annotated[Engine, Depends(get_engine)]) -> TransactionFactory:
    """Writes open their own short transaction, so a message is dispatched only after the commit."""
    return transaction_factory(engine)


JOB_ID_PATTERN = r"^[0-9a-f]{32}$"

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="a repeat with the same key and body returns the original job (200) instead of a new one",
    ),
]

SettingsDep = Annotated[ApiSettings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
TransactionDep = Annotated[TransactionFactory, Depends(get_transaction)]
DispatcherDep = Annotated[Dispatcher, Depends(get_dispatcher)]


def job_of(session: SessionDep, job_id: str) -> Job:
    """The path's job, or a 404 problem (a dependency, so streams check before they start)."""
    return repo.get_job(session, job_id)


JobDep = Annotated[Job, Depends(job_of)]
