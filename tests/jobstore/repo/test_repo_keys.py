"""API keys in the database: hashed, looked up by prefix, revocable, used-at throttled."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine

from jobstore.db import read_connection, read_session, write_transaction
from jobstore.models import ApiKey
from jobstore.repo import keys
from jobstore.repo.keys import Role

Clock = Callable[[float], datetime]


def make(engine: Engine, name: str = "alice", role: Role = Role.OPERATOR) -> keys.NewKey:
    with write_transaction(engine) as session:
        return keys.create_key(session, name=name, role=role)


def test_a_key_is_random_shown_once_and_stored_only_as_a_hash(engine: Engine) -> None:
    first, second = make(engine), make(engine)

    assert first.secret.startswith("ocec_") and len(first.secret) == len("ocec_") + 43
    assert first.secret != second.secret
    with read_session(engine) as session:
        stored = session.get(ApiKey, first.record.id)
    assert stored is not None
    assert stored.key_hash == keys.hash_key(first.secret) and len(stored.key_hash) == 64
    assert stored.prefix == first.secret[:12]
    assert first.secret not in {str(value) for value in stored.model_dump().values()}


def test_find_key_matches_the_whole_key_only(engine: Engine) -> None:
    new = make(engine, role=Role.VIEWER)

    with read_session(engine) as session:
        found = keys.find_key(session, new.secret)
        near_miss = keys.find_key(session, new.secret[:-1] + ("A" if new.secret[-1] != "A" else "B"))
        prefix_only = keys.find_key(session, new.secret[:12])
        foreign = keys.find_key(session, "sk_" + new.secret)
        huge = keys.find_key(session, "ocec_" + "x" * 10_000)

    assert found is not None and (found.id, found.role) == (new.record.id, "viewer")
    assert (near_miss, prefix_only, foreign, huge) == (None, None, None, None)
    with read_connection(engine) as connection:  # the API's look-up: a plain row, the same key
        plain = keys.find_key(connection, new.secret)
    assert plain is not None and plain.model_dump() == found.model_dump() == new.record.model_dump()


# A served API's first request: the plain-row look-up is the process's first use of the models.
FIRST_LOOK_UP = """
import sys
from jobstore.db import make_engine, read_connection
from jobstore.repo.keys import find_key
with read_connection(make_engine(sys.argv[1])) as connection:
    key = find_key(connection, sys.argv[2])
print(key.name, key.role, key.last_used_at)
"""


def test_a_key_found_by_a_fresh_process_reads_like_a_loaded_one(engine: Engine) -> None:
    new = make(engine, name="fresh")
    url = engine.url.render_as_string(hide_password=False)
    found = subprocess.run(
        [sys.executable, "-c", FIRST_LOOK_UP, url, new.secret], capture_output=True, text=True, timeout=60
    )
    assert (found.returncode, found.stdout.split()) == (0, ["fresh", "operator", "None"]), found.stderr


def test_a_revoked_key_is_not_found_and_revoking_twice_keeps_the_first_time(
    engine: Engine, at: Clock
) -> None:
    new = make(engine)

    with write_transaction(engine) as session:
        keys.revoke_key(session, key_id=new.record.id, now=at(0))
    with write_transaction(engine) as session:
        again = keys.revoke_key(session, key_id=new.record.id, now=at(60))
        revoked_at = again.revoked_at
    with read_session(engine) as session:
        assert keys.find_key(session, new.secret) is None
        assert keys.find_key(session.connection(), new.secret) is None
        assert keys.active_key(session, new.record.id) is None
        assert keys.count_keys(session) == 1  # revoked keys still count: no new first admin key
    assert revoked_at == at(0)


def test_revoking_an_unknown_key_raises(engine: Engine) -> None:
    with pytest.raises(keys.ApiKeyNotFoundError), write_transaction(engine) as session:
        keys.revoke_key(session, key_id="0" * 32)


def test_resolve_key_id_by_unambiguous_prefix(engine: Engine) -> None:
    new = make(engine)
    key_id = new.record.id

    with read_session(engine) as session:
        assert keys.resolve_key_id(session, key_id) == key_id
        assert keys.resolve_key_id(session, key_id[:8].upper()) == key_id
        for bad in ("", "abc", "zzzzzzzz", "f" * 33):
            with pytest.raises(keys.ApiKeyNotFoundError):
                keys.resolve_key_id(session, bad)


@pytest.mark.parametrize("name", ["", "   ", "x" * 101, "tab\there", "new\nline"])
def test_bad_names_are_refused(engine: Engine, name: str) -> None:
    with pytest.raises(keys.ApiKeyError), write_transaction(engine) as session:
        keys.create_key(session, name=name, role=Role.VIEWER)


def test_roles_are_ordered() -> None:
    assert Role.ADMIN.allows(Role.OPERATOR) and Role.OPERATOR.allows(Role.VIEWER)
    assert not Role.VIEWER.allows(Role.OPERATOR) and not Role.OPERATOR.allows(Role.ADMIN)
    with pytest.raises(ValueError):
        Role("root")


def test_touch_writes_at_most_once_per_interval(engine: Engine, at: Clock) -> None:
    key_id = make(engine).record.id
    interval = timedelta(seconds=60)

    def touch(seconds: float) -> bool:
        with write_transaction(engine) as session:
            return keys.touch_key(session, key_id=key_id, now=at(seconds), min_interval=interval)

    written = [touch(0), touch(30), touch(59), touch(60), touch(61)]

    assert written == [True, False, False, True, False]
    with read_session(engine) as session:
        assert keys.get_key(session, key_id).last_used_at == at(60)


def test_actor_label_names_the_key_and_its_id(engine: Engine) -> None:
    record = make(engine, name="ci bot").record

    assert keys.actor_label(record) == f"ci bot (key {record.id[:8]})"
