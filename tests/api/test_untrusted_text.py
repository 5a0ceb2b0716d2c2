"""Free text a user sends (job and key names, reasons, file names, the name filter) is refused with
a 422 naming the field when it holds a control or bidirectional-formatting character."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from jobstore.repo.keys import Role
from tests.api.conftest import KeyMaker

TITLE_AND_BELL = "ok\x1b]0;pwned\x07"
RIGHT_TO_LEFT = "invoice\u202egpj.exe"


def _field(response: Any) -> tuple[int, str, str]:
    error = response.json().get("errors", [{}])[0]
    return response.status_code, error.get("field", ""), error.get("location", "")


def test_control_and_bidi_characters_are_refused_naming_the_field(
    client: TestClient, make_key: KeyMaker, job_body: dict[str, Any]
) -> None:
    as_admin = make_key("root", Role.ADMIN).headers
    job = client.post("/jobs", json=job_body).json()["id"]
    sent = {
        "job name": client.post("/jobs", json={**job_body, "name": TITLE_AND_BELL}),
        "fork name": client.post(f"/jobs/{job}/fork", json={"name": RIGHT_TO_LEFT}),
        "pause reason": client.post(f"/jobs/{job}/pause", json={"reason": "done\rsucceeded"}),
        "cancel reason": client.post(f"/jobs/{job}/cancel", json={"reason": "a\x00b"}),
        "resume reason": client.post(f"/jobs/{job}/resume", json={"reason": "del\x7f"}),
        "stage reason": client.post(f"/jobs/{job}/stage", json={"stage": 2, "reason": "x\u2066y"}),
        "decide reason": client.post(f"/jobs/{job}/decide", json={"action": "stop", "reason": "c1\x9b"}),
        "key name": client.post("/keys", json={"name": RIGHT_TO_LEFT, "role": "viewer"}, headers=as_admin),
        "raw upload name": client.post("/models", params={"filename": "a\x1bb.pt"}, content=b"x"),
        "multipart upload name": client.post("/models", files={"file": ("a\u202eb.pt", b"x")}),
        "name filter": client.get("/jobs?name=%00x"),
    }

    assert {what: _field(answer) for what, answer in sent.items()} == {
        "job name": (422, "name", "body"),
        "fork name": (422, "name", "body"),
        "pause reason": (422, "reason", "body"),
        "cancel reason": (422, "reason", "body"),
        "resume reason": (422, "reason", "body"),
        "stage reason": (422, "reason", "body"),
        "decide reason": (422, "reason", "body"),
        "key name": (422, "name", "body"),
        "raw upload name": (422, "filename", "query"),
        "multipart upload name": (422, "filename", "body"),
        "name filter": (422, "name", "query"),
    }
    assert client.get("/jobs", params={"name": "hq"}).json()["data"][0]["id"] == job  # plain text works
