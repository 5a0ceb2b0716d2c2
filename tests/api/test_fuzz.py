"""Schemathesis against the OpenAPI schema: every operation, then stateful chains of them.

The app is the real one — auth on (the fuzzer holds an admin key), a migrated SQLite database, a
Celery client publishing to the real Redis on a queue of its own — reached in-process over ASGI.
Checks: no 5xx, status codes, content types, headers and bodies as documented, negative data
rejected, auth not ignored. Links between operations are inferred by schemathesis from the
response schemas and the ``Location`` headers (POST /jobs → GET /jobs/{job_id}, …;
POST /keys → DELETE /keys/{key_id}); a test below checks that they are there.

The number of requests made is printed to the terminal (and recorded as a user property).
The stateful phase runs each scenario as one of the three roles (a viewer, an operator or an admin
key) and mixes the link chains with calls of any operation, whose path ids are, for about half of
the valid cases, real: the seeded job, a model and a dataset upload, a key to revoke.

Budget: ``OCEC_FUZZ_EXAMPLES`` (default 30) examples per operation; ``OCEC_FUZZ_SCENARIOS``
(default 60) stateful scenarios or ``OCEC_FUZZ_STATEFUL_SECONDS`` (default 25), whichever ends
first (past the scenarios, runs go on within the seconds until every operation has been called).
Streams: a job's stream stays open until the job ends, so a read is cut after
``max-stream-events`` events or ``STREAM_CUT_SECONDS``; half the real job ids of stream reads are a
finished job's, whose whole feed (``end`` event included) arrives at once.
A failed stateful run prints the steps that failed; ``pytest --hypothesis-seed=N`` fixes the draws.
"""

from __future__ import annotations

import json
import os
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule
from schemathesis.generation.stateful.state_machine import StepInput
from schemathesis.python import asgi

from api.main import create_app
from api.settings import ApiSettings
from jobstore import repo
from jobstore.db import make_engine, write_transaction
from jobstore.kinds import CheckpointKind
from jobstore.migrate import upgrade_to_head
from jobstore.models import new_id
from jobstore.repo import keys, uploads
from jobstore.repo.uploads import NewUpload, UploadKind
from jobstore.spec import JobCreate
from tests.api.conftest import DATASET, PRETRAIN, forget_queue
from tests.api.worker_sim import SimWorker

EXAMPLES = int(os.environ.get("OCEC_FUZZ_EXAMPLES", "30"))
SCENARIOS = int(os.environ.get("OCEC_FUZZ_SCENARIOS", "60"))
STATEFUL_SECONDS = float(os.environ.get("OCEC_FUZZ_STATEFUL_SECONDS", "25"))
STEPS = 8
SCENARIOS_PER_RUN = 10  # the time budget is checked between runs
MAX_RESTARTS = 60
# Openings are drawn at random, so the scenario budget can end before every operation was called:
# the run then goes on, within the seconds and up to this many scenarios, until each one has been.
SCENARIO_CAP = 4 * SCENARIOS
STREAM = "/jobs/{job_id}/stream"
# A stream of a job that has not ended is cut at this deadline (schemathesis keeps the events read
# by then). The same deadline covers the answer's headers: when they are not there yet (a loaded
# box), the read is made once more with HEADERS_SECONDS, which only a stuck server would exceed.
STREAM_CUT_SECONDS = 1.0
HEADERS_SECONDS = 15.0
# A valid case of these draws a picture of the seeded job (up to 3000 x 2400 pixels, about a second
# each on a loaded box): a third of the examples (the invalid cases are answered before drawing).
RENDERED = {"/jobs/{job_id}/plot.png"}
ROLES = (keys.Role.VIEWER, keys.Role.OPERATOR, keys.Role.ADMIN)


@dataclass
class Tally:
    """Requests the fuzzer made, by phase and by status code."""

    by_phase: Counter[str] = field(default_factory=Counter)
    by_status: Counter[int] = field(default_factory=Counter)
    calls: Counter[tuple[str, str, int]] = field(default_factory=Counter)  # (phase, operation, status)
    by_role: Counter[tuple[str, str, int]] = field(default_factory=Counter)  # stateful (role, op, status)
    phase: str = "stateless"
    role: str = keys.Role.ADMIN.value
    scenarios: int = 0
    restarts: int = 0
    slow_stream_headers: int = 0  # stream reads made again: the headers missed STREAM_CUT_SECONDS

    def count(self, operation: str, status: int) -> None:
        self.by_phase[self.phase] += 1
        self.by_status[status] += 1
        self.calls[(self.phase, operation, status)] += 1
        if self.phase == "stateful":
            self.by_role[(self.role, operation, status)] += 1

    def line(self) -> str:
        statuses = ", ".join(f"{code}: {n}" for code, n in sorted(self.by_status.items()))
        phases = ", ".join(f"{phase} {n}" for phase, n in self.by_phase.items())
        stateful = f"{self.scenarios} stateful scenarios, {self.restarts} restarts"
        stateful += f", {self.slow_stream_headers} stream reads made again"
        total = sum(self.by_phase.values())
        return f"schemathesis: {total} requests ({phases}; {stateful}); by status {statuses}"


TALLY = Tally()


@pytest.fixture(scope="module")
def fuzz_settings(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[ApiSettings]:
    home = tmp_path_factory.mktemp("fuzz") / "home"
    settings = ApiSettings(
        home=home,
        database_url=f"sqlite:///{home / 'ocec.db'}",
        broker_url=redis_url,
        queue=f"fuzz-{uuid.uuid4().hex[:12]}",
        stream_poll_seconds=0.05,
        stream_keepalive_seconds=0.1,
        max_page_size=20,
        default_page_size=10,
        # schemathesis sends thousands of wrong keys from one address and wants each answered 401
        # (its ignored_auth check); the failed-key limit has its own tests (tests/api/auth/test_failures.py)
        auth_failure_limit=1_000_000,
    )
    upgrade_to_head(settings.database_url)
    (settings.data_root / DATASET / "train").mkdir(parents=True)
    settings.model_root.mkdir(parents=True)
    (settings.model_root / PRETRAIN).write_bytes(b"not really a checkpoint")
    settings.runs_root.mkdir(parents=True)
    yield settings
    forget_queue(redis_url, settings.queue)


def seed_job(settings: ApiSettings, *, finished: bool = False) -> str:
    """A running job with an epoch of metrics and a checkpoint file: rows for the fuzzer to meet;
    ``finished``: the same job run to its end (a stream of it replays everything, then ``end``)."""
    engine = make_engine(settings.database_url)
    try:
        with write_transaction(engine) as session:
            create = JobCreate(name="seeded", data_root=DATASET, pretrain=PRETRAIN, epochs=5)
            job_id = repo.create_job(session, create=create).job.id
        worker = SimWorker(engine, job_id)
        worker.claim()
        worker.epoch(1, val_f1=0.71)
        (settings.runs_root / job_id).mkdir(parents=True)
        (settings.runs_root / job_id / "last.pt").write_bytes(b"weights")
        worker.checkpoint(f"{job_id}/last.pt", CheckpointKind.LAST, epoch=1)
        if finished:
            worker.finish()
        return job_id
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Seeded:
    """Real rows for the fuzzer's path ids, and a key per role."""

    job_id: str
    finished_job_id: str  # its stream ends by itself
    upload_ids: dict[str, str]  # "/models/{upload_id}" or "/datasets/{upload_id}" -> an upload's id
    deletable_upload_ids: dict[str, str]  # the same for DELETE: the others stay for the later reads
    revocable_key_id: str  # DELETE /keys/{key_id} may revoke it: no scenario signs in with it
    secrets: dict[str, str]  # role -> key


def seed(settings: ApiSettings) -> Seeded:
    engine = make_engine(settings.database_url)
    try:
        with write_transaction(engine) as session:
            secrets = {r.value: keys.create_key(session, name=f"fuzz-{r}", role=r).secret for r in ROLES}
            revocable = keys.create_key(session, name="revocable", role=keys.Role.VIEWER).record.id
            upload_ids, deletable = (
                {
                    f"/{kind.value}s/{{upload_id}}": seed_upload(session, settings, kind)
                    for kind in (UploadKind.MODEL, UploadKind.DATASET)
                }
                for _ in range(2)
            )
    finally:
        engine.dispose()
    finished = seed_job(settings, finished=True)
    return Seeded(seed_job(settings), finished, upload_ids, deletable, revocable, secrets)


def seed_upload(session: Any, settings: ApiSettings, kind: UploadKind) -> str:
    """An upload row with its file in place (what POST /models or /datasets leaves behind)."""
    upload_id = new_id()
    root = settings.model_root if kind is UploadKind.MODEL else settings.data_root
    path = f"uploads/{upload_id}/{PRETRAIN if kind is UploadKind.MODEL else 'data.parquet'}"
    (root / path).parent.mkdir(parents=True)
    (root / path).write_bytes(b"seeded")
    new = NewUpload(
        id=upload_id, kind=kind, filename="seeded", path=path, sha256="0" * 64, size_bytes=6,
        owner="fuzzer", meta={},
    )  # fmt: skip
    return uploads.record_upload(session, new=new).id


@pytest.fixture(scope="module")
def seeded(fuzz_settings: ApiSettings) -> Seeded:
    return seed(fuzz_settings)


@pytest.fixture(scope="module")
def fuzz_schema(fuzz_settings: ApiSettings, seeded: Seeded) -> Iterator[Any]:
    app = create_app(fuzz_settings)
    config = schemathesis.Config.from_dict(
        {
            "auth": {"openapi": {"ApiKey": {"bearer": seeded.secrets[keys.Role.ADMIN.value]}}},
            "request-timeout": 5,
            "max-stream-events": 8,  # more than the finished job's feed: its stream ends by itself
            "operations": [{"include-path": STREAM, "request-timeout": STREAM_CUT_SECONDS}],
            "generation": {"max-examples": EXAMPLES, "database": "none"},
            # Schema-valid is not always acceptable: a data_root that does not exist, a reused
            # Idempotency-Key, … are documented 422s the schema cannot express.
            "checks": {"positive_data_acceptance": {"enabled": False}},
        }
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)

    @schema.hook
    def after_call(context: Any, case: Any, response: Any) -> None:
        TALLY.count(case.operation.label, response.status_code)

    @schema.hook
    def map_case(context: Any, case: Any) -> Any:
        """Reach past the 404s and 422s of random input for about half of the valid cases: a path id
        becomes a real one (the seeded job, an upload of the right kind, the revocable key; queries,
        bodies and headers then meet real rows), a submission names the dataset and model that exist
        (so the stateful phase has jobs to chain on). The choice is a function of the case itself,
        not a new draw, so Hypothesis can replay it."""
        if not is_positive(case) or not coin(case):
            return case
        deleting = case.operation.method.upper() == "DELETE"
        upload_ids = seeded.deletable_upload_ids if deleting else seeded.upload_ids
        real = {
            "job_id": stream_job(case, seeded) if case.operation.path == STREAM else seeded.job_id,
            "upload_id": upload_ids.get(case.operation.path, ""),
            "key_id": seeded.revocable_key_id,
        }
        params = case.path_parameters or {}
        if params:
            case.path_parameters = {name: real.get(name) or value for name, value in params.items()}
        elif case.operation.label == "POST /jobs" and isinstance(case.body, dict):
            case.body = with_real_paths(case.body)
        return case

    yield schema
    asgi.shutdown_lifespans()  # the app's lifespan: its engine and Celery client


def is_positive(case: Any) -> bool:
    meta = getattr(case, "_meta", None)  # schemathesis keeps the generation mode there
    return meta is not None and not meta.generation.mode.is_negative


def coin(case: Any, toss: int = 0) -> bool:
    """Heads or tails as a function of the case; ``toss`` 0, 1, … are independent of each other."""
    parts = (case.path_parameters, case.query, case.headers, case.body)
    return zlib.crc32(json.dumps(parts, sort_keys=True, default=str).encode()) >> toss & 1 == 1


def stream_job(case: Any, seeded: Seeded) -> str:
    """Half the real stream reads are of the finished job (everything, then ``end``, at once), half of
    the running one (its events, then keep-alives until the read is cut: STREAM_CUT_SECONDS)."""
    return seeded.finished_job_id if coin(case, toss=1) else seeded.job_id


def with_real_paths(body: dict[str, Any]) -> dict[str, Any]:
    real = {**body, "data_root": DATASET}
    if "pretrain" in real:
        real["pretrain"] = PRETRAIN
    return real


def operations() -> list[tuple[str, str]]:
    """(method, path) of every documented operation (from the app's own schema; no database needed)."""
    schema = create_app().openapi()
    return [(method, path) for path, ops in schema["paths"].items() for method in ops]


FUZZ_SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES,
    deadline=None,
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    suppress_health_check=list(hypothesis.HealthCheck),
    database=None,
)


@pytest.mark.parametrize("mode", list(schemathesis.GenerationMode), ids=str)
@pytest.mark.parametrize(("method", "path"), operations(), ids=lambda v: str(v))
def test_every_operation(fuzz_schema: Any, method: str, path: str, mode: schemathesis.GenerationMode) -> None:
    operation = fuzz_schema[path][method]

    examples = EXAMPLES // 3 if path in RENDERED and mode.is_positive else EXAMPLES

    @hypothesis.settings(FUZZ_SETTINGS, max_examples=max(examples, 1))
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def fuzz(case: Any) -> None:
        patiently(case.call_and_validate, case)

    try:
        fuzz()
    except hypothesis.errors.Unsatisfiable:
        pytest.skip(f"{method.upper()} {path} has no input that could be made invalid")


def patiently(call: Callable[..., Any], case: Any) -> Any:
    """``call()`` (a call and its checks); a stream read whose headers missed the cut deadline is
    made once more with a deadline only a stuck server misses (HEADERS_SECONDS). Any other timeout
    is a finding."""
    try:
        return call()
    except requests.exceptions.ReadTimeout:
        if case.operation.path != STREAM:
            raise
        TALLY.slow_stream_headers += 1
        return call(timeout=HEADERS_SECONDS)


def test_links_chain_operations(fuzz_schema: Any) -> None:
    machine = fuzz_schema.as_state_machine()
    rules = {name for name in dir(machine) if "__" in name}

    assert any(r.startswith("POST_jobs___201") and r.endswith("GET_jobs_job_id_") for r in rules)
    assert any(r.startswith("POST_jobs___201") and r.endswith("POST_jobs_job_id_cancel") for r in rules)
    assert any(r.startswith("POST_keys___201") and r.endswith("DELETE_keys_key_id_") for r in rules)


@pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")  # the sweep
def test_stateful_sequences(fuzz_schema: Any, seeded: Seeded) -> None:
    """Chains of calls along the links, mixed with calls of any operation, each scenario as one role.
    The database outlives each scenario, so Hypothesis cannot always replay a choice sequence: it
    then stops with FlakyStrategyDefinition, which is no finding about the API. The run goes on with
    fresh scenarios until the budget is spent: the seconds, or the scenarios once every operation
    has been called. Any failed check is reported."""
    TALLY.phase = "stateful"
    failures: list[str] = []
    operations = [op.ok() for op in fuzz_schema.get_all_operations()]
    strategies = {op.label: op.as_strategy() for op in operations}
    labels, roles = sorted(strategies), [r.value for r in ROLES]
    scenarios = [0]

    class Machine(fuzz_schema.as_state_machine()):  # type: ignore[misc]
        secret = ""
        timeout: float | None = None  # the retried stream read's, else the configured one

        def setup(self) -> None:
            scenarios[0] += 1

        @initialize(role=st.sampled_from(roles), opening=st.sampled_from(labels), data=st.data())
        def act_as(self, role: str, opening: str, data: st.DataObject) -> None:
            """The scenario's role, and a first call of any operation."""
            TALLY.role, self.secret = role, seeded.secrets[role]
            self.step(StepInput.initial(data.draw(strategies[opening])))

        def before_call(self, case: Any) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {self.secret}"}

        def step(self, input: StepInput) -> Any:
            return patiently(partial(self.patient_step, input), input.case)

        def patient_step(self, input: StepInput, timeout: float | None = None) -> Any:
            self.timeout = timeout
            return super().step(input)

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {} if self.timeout is None else {"timeout": self.timeout}

        def validate_response(self, response: Any, case: Any, *args: Any, **kwargs: Any) -> None:
            try:
                super().validate_response(response, case, *args, **kwargs)
            except requests.exceptions.ReadTimeout:
                raise  # a check's own request of a stream, made again by patiently()
            except Exception as exc:
                failures.append(f"{TALLY.role} {case.operation.label}: {exc}")
                raise

    for index, label in enumerate(labels):  # a rule per operation: as likely as any link's rule
        setattr(Machine, f"call_{index}", rule(data=st.data())(calling(strategies[label])))
    deadline = time.monotonic() + STATEFUL_SECONDS
    for _restart in range(MAX_RESTARTS):
        if time.monotonic() > deadline or scenarios[0] >= SCENARIO_CAP:
            break
        if scenarios[0] >= SCENARIOS and called_all(labels):
            break
        try:
            Machine.run(settings=stateful_settings(SCENARIOS_PER_RUN))
        except hypothesis.errors.FlakyStrategyDefinition:
            TALLY.restarts += 1
        if failures:
            raise AssertionError("stateful fuzzing found:\n" + "\n\n".join(failures[:3]))
    TALLY.scenarios = scenarios[0]
    _call_the_missed(labels, strategies, seeded.secrets[keys.Role.ADMIN.value])

    called = {(role, op, status) for role, op, status in TALLY.by_role}
    assert called_all(labels), set(labels) - {op for _, op, _ in called}  # in the stateful phase
    assert {role for role, _, status in called if status < 300} == {r.value for r in ROLES}
    assert any(role == "viewer" and status == 403 for role, _, status in called)  # roles are enforced
    reached = {op for _, op, status in called if status < 300}
    assert len({op for op in reached if "{job_id}" in op}) >= 2, reached  # real or chained job ids
    # Real upload ids, in any phase: with about fifty operations a stateful run need not draw an
    # upload read whose id the coin made real (and a DELETE along a link may remove one first).
    uploads_reached = {op for _, op, status in TALLY.calls if status < 300 and "{upload_id}" in op}
    assert uploads_reached, reached


def called_all(labels: list[str]) -> bool:
    return {op for _, op, _ in TALLY.by_role} >= set(labels)


def _call_the_missed(labels: list[str], strategies: dict[str, Any], secret: str) -> None:
    """Openings are random and replays restart often, so a run can end with an operation never
    called: each such one is called once here, as admin, and its answer validated all the same."""
    TALLY.role = keys.Role.ADMIN.value
    for label in sorted(set(labels) - {op for _, op, _ in TALLY.by_role}):
        case = strategies[label].example()
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {secret}"}
        response = patiently(case.call_and_validate, case)
        if label not in {op for _, op, _ in TALLY.by_role}:  # in case the after_call hook did not count it
            TALLY.count(label, response.status_code)


def calling(strategy: Any) -> Any:
    """A state machine rule: one call of the operation ``strategy`` draws cases for."""

    def call(machine: Any, data: st.DataObject) -> None:
        machine.step(StepInput.initial(data.draw(strategy)))

    return call


def stateful_settings(scenarios: int) -> hypothesis.settings:
    return hypothesis.settings(
        max_examples=scenarios,
        stateful_step_count=STEPS,
        deadline=None,
        phases=[hypothesis.Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck),
        database=None,
    )


def test_report_the_number_of_requests(
    capsys: pytest.CaptureFixture[str], record_property: Any, fuzz_schema: Any
) -> None:
    total = sum(TALLY.by_phase.values())
    record_property("fuzz_requests", total)
    with capsys.disabled():
        print(f"\n{TALLY.line()}")
    assert total > 0
    assert not [code for code in TALLY.by_status if code >= 500]
