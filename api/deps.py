"""Dependencies as named types, so route signatures read like declarations."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy import Engine
from sqlmodel import Session

from api.dispatch import Dispatcher
from api.lifespan import Resources
from api.settings import ApiSettings
from jobstore.db import TransactionFactory, read_session, transaction_factory

ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Actor:
    """Who is acting: recorded on every event and command. ``owner`` scopes idempotency keys."""

    name: str
    owner: str = ""  # the API key id once auth exists; "" while it is off


def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


def get_settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings
    return settings


def get_engine(resources: Annotated[Resources, Depends(get_resources)]) -> Engine:
    return resources.engine


def get_dispatcher(resources: Annotated[Resources, Depends(get_resources)]) -> Dispatcher:
    return resources.dispatcher


def get_session(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Session]:
    """A read session that ends when the route function returns (before the response streams)."""
    with read_session(engine) as session:
        yield session


def get_transaction(engine: Annotated[Engine, Depends(get_engine)]) -> TransactionFactory:
    """Writes open their own short transaction, so a message is dispatched only after the commit."""
    return transaction_factory(engine)


def get_actor(
    x_actor: Annotated[
        str | None, Header(max_length=255, description="who is acting (until API keys)")
    ] = None,
) -> Actor:
    """The acting identity. The auth layer replaces this one dependency with API-key identities."""
    name = (x_actor or "").strip()
    return Actor(name=name or ANONYMOUS)


SettingsDep = Annotated[ApiSettings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
TransactionDep = Annotated[TransactionFactory, Depends(get_transaction)]
DispatcherDep = Annotated[Dispatcher, Depends(get_dispatcher)]
ActorDep = Annotated[Actor, Depends(get_actor)]
