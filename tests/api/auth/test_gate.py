"""Nothing heavy happens before authentication (issue 13 point 1), over real HTTP (uvicorn): a keyless
body is refused 401 unread; a NaN bomb, with or without a key, is refused small and cheap while
an authenticated read keeps answering. No timing is asserted; the latencies are printed."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from api.errors import MAX_LISTED_ERRORS
from api.limits import JSON_LIMIT
from tests.api.conftest import Key
from tests.worker.worker_harness import wait_for

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

SMALL_ANSWER = 64 << 10
JSON = {"Content-Type": "application/json"}
BIG_BOMB = ("[" + ",".join(["NaN"] * 200_000) + "]").encode()  # ~800 KB: the probe's repro
FITTING = (JSON_LIMIT - 2) // 4  # NaNs in a bomb that fits the cap of POST /jobs
FITTING_BOMB = ("[" + ",".join(["NaN"] * FITTING) + "]").encode()


@dataclass
class Bomber:
    """Sends one kind of bomb again and again until told to stop; keeps every answer's size."""

    base: str
    body: bytes
    headers: dict[str, str]
    answers: list[tuple[int, int, float]] = field(default_factory=list)  # status, bytes, finished at

    def run(self, stop: threading.Event) -> None:
        with httpx.Client(base_url=self.base, timeout=60) as client:
            while not stop.is_set():
                response = client.post("/jobs", content=self.body, headers={**JSON, **self.headers})
                self.answers.append((response.status_code, len(response.content), time.monotonic()))


@pytest.fixture
def bombers(live_server: str, operator_key: Key) -> list[Bomber]:
    return [
        Bomber(live_server, BIG_BOMB, {}),
        Bomber(live_server, BIG_BOMB, operator_key.headers),
        Bomber(live_server, FITTING_BOMB, {}),
        Bomber(live_server, FITTING_BOMB, operator_key.headers),
    ]


def test_nan_bombs_four_at_a_time_leave_reads_answering(
    live_server: str, operator_key: Key, bombers: list[Bomber]
) -> None:
    stop = threading.Event()
    threads = [threading.Thread(target=b.run, args=(stop,), daemon=True) for b in bombers]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: all(b.answers for b in bombers), 60, "a first answer to every bomber")
        reads_began, latencies = time.monotonic(), []
        with httpx.Client(base_url=live_server, headers=operator_key.headers, timeout=60) as client:
            for _ in range(10):
                start = time.monotonic()
                assert client.get("/jobs").status_code == 200
                latencies.append(time.monotonic() - start)
        wait_for(lambda: all(b.answers[-1][2] > reads_began for b in bombers), 60, "bombs after the reads")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    print(f"\nGET /jobs under 4 NaN bombs: {', '.join(f'{s * 1000:.0f} ms' for s in latencies)}")

    statuses = [{status for status, _, _ in b.answers} for b in bombers]
    assert statuses == [{401}, {413}, {401}, {422}]
    assert max(size for b in bombers for _, size, _ in b.answers) < SMALL_ANSWER


def test_a_nan_bomb_that_fits_lists_the_first_errors_and_a_count(http: httpx.Client) -> None:
    problem = http.post("/jobs", content=FITTING_BOMB, headers=JSON).json()

    assert [e["field"] for e in problem["errors"]] == [str(i) for i in range(MAX_LISTED_ERRORS)]
    assert problem["errors_omitted"] == FITTING - MAX_LISTED_ERRORS
    assert problem["detail"].endswith(f"and {FITTING - MAX_LISTED_ERRORS} more")


def counted(total: int, sent: list[int]) -> Iterator[bytes]:
    chunk = b" " * (64 << 10)
    while sent[0] < total:
        sent[0] += len(chunk)
        yield chunk


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
@pytest.mark.parametrize("path", ["/jobs", "/models"])
def test_a_keyless_body_is_refused_before_it_is_read(live_server: str, declared: bool, path: str) -> None:
    total, sent = 200 << 20, [0]
    headers = {**JSON, "Content-Length": str(total)} if declared else JSON

    response = httpx.post(f"{live_server}{path}", content=counted(total, sent), headers=headers, timeout=60)

    assert response.status_code == 401
    assert response.headers["connection"] == "close"
    assert sent[0] < total // 4, sent[0]  # what the socket buffers took before the server hung up
