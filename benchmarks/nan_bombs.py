"""How an authenticated read fares while NaN bombs hit the API, 4 at a time (issue 13's probe).

The API runs in a process of its own (uvicorn, a fresh home, SQLite), and so does each bomber, so
no interpreter lock is shared with the timed reads. Four bombers send bombs in a loop: the probe's
800 KB ``[NaN,…]`` with and without a key, and a bomb that just fits the 64 KiB cap of
``POST /jobs``, with and without a key. Meanwhile ``GET /jobs`` with a key is timed, and once more
with nothing else running. Prints the latencies and what the bombs were answered (status, size)::

    python -m benchmarks.nan_bombs [--seconds 10]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from multiprocessing import Queue
from multiprocessing.synchronize import Event
from pathlib import Path

import httpx

from api.limits import JSON_LIMIT
from jobstore.db import make_engine, write_transaction
from jobstore.migrate import upgrade_to_head
from jobstore.repo import keys
from jobstore.settings import Settings

BIG = ("[" + ",".join(["NaN"] * 200_000) + "]").encode()
FITTING = ("[" + ",".join(["NaN"] * ((JSON_LIMIT - 2) // 4)) + "]").encode()
JSON = {"Content-Type": "application/json"}


def operator_key(home: Path) -> str:
    settings = Settings(home=home)
    upgrade_to_head(settings.database_url)
    engine = make_engine(settings.database_url)
    with write_transaction(engine) as session:
        secret = keys.create_key(session, name="bench", role=keys.Role.OPERATOR).secret
    engine.dispose()
    return secret


def start_api(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "uvicorn", "api.main:create_app", "--factory", "--port", str(port)]
    command += ["--log-level", "warning", "--no-access-log"]
    server = subprocess.Popen(command, env={**os.environ, "OCEC_HOME": str(home)}, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return server, url
        except httpx.TransportError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("the API did not start")


def bomb(url: str, body: bytes, headers: dict[str, str], stop: Event, results: Queue[Counter[str]]) -> None:
    seen: Counter[str] = Counter()
    with httpx.Client(base_url=url, timeout=120) as client:
        while not stop.is_set():
            answer = client.post("/jobs", content=body, headers={**JSON, **headers})
            seen[f"{answer.status_code} ({len(answer.content)} B)"] += 1
    results.put(seen)


def timed_reads(url: str, key: str, seconds: float) -> list[float]:
    latencies = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as client:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            start = time.perf_counter()
            client.get("/jobs").raise_for_status()
            latencies.append(time.perf_counter() - start)
            time.sleep(0.05)
    return latencies


def summary(name: str, latencies: list[float]) -> str:
    ms = sorted(s * 1000 for s in latencies)
    median, p95 = statistics.median(ms), ms[int(0.95 * (len(ms) - 1))]
    return f"{name}: {len(ms)} reads, median {median:.1f} ms, p95 {p95:.1f} ms, max {ms[-1]:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="how long each phase runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        key = operator_key(Path(tmp))
        server, url = start_api(Path(tmp))
        try:
            print(summary("GET /jobs alone", timed_reads(url, key, args.seconds)))
            context = multiprocessing.get_context("fork")
            stop, results = context.Event(), context.Queue()
            auth = {"Authorization": f"Bearer {key}"}
            kinds = [(BIG, {}), (BIG, auth), (FITTING, {}), (FITTING, auth)]
            bombers = [context.Process(target=bomb, args=(url, b, h, stop, results)) for b, h in kinds]
            for bomber in bombers:
                bomber.start()
            print(summary("GET /jobs under 4 NaN bombs", timed_reads(url, key, args.seconds)))
            stop.set()
            seen = sum((results.get(timeout=120) for _ in bombers), Counter[str]())
            for bomber in bombers:
                bomber.join()
            print("bombs answered:", ", ".join(f"{n} x {what}" for what, n in sorted(seen.items())))
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
