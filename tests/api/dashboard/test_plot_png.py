"""GET /jobs/{id}/plot.png: the job page's curves as a PNG, with the stage boundaries drawn and
labelled with their reasons, for curl users; auth and errors like every other GET."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import Engine

from api.routes.plots import STAGE_COLOURS, stage_marks
from jobstore.models import JobEvent
from tests.api.worker_sim import SimWorker

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _submit(client: TestClient, body: dict[str, Any]) -> str:
    response = client.post("/jobs", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _image(response: Any) -> Image.Image:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert response.content.startswith(PNG_SIGNATURE)
    return Image.open(io.BytesIO(response.content)).convert("RGB")


def _has_colour(image: Image.Image, hex_colour: str, tolerance: int = 24) -> bool:
    """Whether some pixels are (nearly: lines are antialiased) this colour."""
    wanted = [int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)]
    near = [
        p for p in image.getdata() if all(abs(c - w) <= tolerance for c, w in zip(p, wanted, strict=True))
    ]
    return len(near) >= 20


def test_plot_draws_the_curves_and_the_stage_boundary(
    client: TestClient, engine: Engine, job_body: dict[str, Any]
) -> None:
    job_id = _submit(client, job_body)
    worker = SimWorker(engine, job_id)
    worker.claim()
    for epoch, f1 in enumerate([0.6, 0.7, 0.81], start=1):
        worker.epoch(epoch, val_f1=f1)
    before = _image(client.get(f"/jobs/{job_id}/plot.png", params={"width": 800, "height": 600}))
    worker.stage(2, epoch=4)
    worker.epoch(4, stage=2, val_f1=0.84)

    after = _image(client.get(f"/jobs/{job_id}/plot.png", params={"width": 800, "height": 600}))

    assert after.size == (800, 600)
    assert not _has_colour(before, STAGE_COLOURS[2])
    assert _has_colour(after, STAGE_COLOURS[2])  # the dashed stage-2 line


def test_plot_of_a_job_without_epochs_and_its_errors(
    client: TestClient, anonymous: TestClient, job_body: dict[str, Any]
) -> None:
    job_id = _submit(client, job_body)

    assert _image(client.get(f"/jobs/{job_id}/plot.png")).size == (1200, 800)
    missing = client.get(f"/jobs/{'f' * 32}/plot.png")
    assert (missing.status_code, missing.headers["content-type"]) == (404, "application/problem+json")
    too_small = client.get(f"/jobs/{job_id}/plot.png", params={"width": 10})
    assert too_small.status_code == 422 and too_small.json()["errors"][0]["field"] == "width"
    assert anonymous.get(f"/jobs/{job_id}/plot.png").status_code == 401


def _event(seq: int, kind: str, **fields: Any) -> JobEvent:
    return JobEvent(job_id="j", seq=seq, kind=kind, at=datetime.now(UTC), **fields)


def _change(seq: int, epoch: int, stages: tuple[int | None, int], trigger: str, **fields: Any) -> JobEvent:
    evidence = {"trigger": trigger, **fields.pop("evidence", {})}
    from_stage, to_stage = stages
    return _event(
        seq,
        "stage_change",
        epoch=epoch,
        from_stage=from_stage,
        to_stage=to_stage,
        evidence=evidence,
        **fields,
    )


def test_stage_marks_are_labelled_with_their_reason_and_dropped_when_rolled_back() -> None:
    gate = {"val_f1": 0.8123, "gate_f1": 0.8}
    events = [
        _change(1, 1, (None, 1), "start"),
        _change(2, 7, (1, 2), "gate", reason="gate passed", evidence=gate),
        _event(3, "restored", evidence={"stage": 1, "epoch": 5}),  # resumed from before the boundary
        _change(4, 6, (1, 2), "forced", actor="alice", reason="good enough"),
        _change(5, 9, (2, 3), "policy", reason="x", evidence={"val_f1": 0.83, "gate_f1": 0.85}),
    ]

    marks = stage_marks(events)

    assert [(m.epoch, m.label) for m in marks] == [
        (6, "stage 2 — forced by alice: good enough"),
        (9, "stage 3 — policy proceed: F1 0.830 < 0.85"),
    ]
    assert stage_marks(events[:2])[0].label == "stage 2 — gate: F1 0.812 ≥ 0.80"


def test_stage_mark_labels_show_control_and_bidi_characters_as_escapes() -> None:
    events = [_change(1, 4, (1, 2), "forced", actor="eve", reason="ok\x1b[2K\u202eyes")]

    assert stage_marks(events)[0].label == "stage 2 — forced by eve: ok\\x1b[2K\\u202eyes"
