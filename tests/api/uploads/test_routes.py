"""POST/GET /models and /datasets over real HTTP (uvicorn) with auth on, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import torch

from api.settings import ApiSettings
from jobstore.repo.keys import Role
from tests.api.conftest import KeyMaker
from tests.api.uploads.data_files import REFERENCE_PARQUET, folder_entries, zip_of
from tests.live_api import serve

MODEL_A = Path("/work/shared/fixtures/ocec_reference/ocec_ref_cosface_epoch0012.pt")
EVIL = b"\x80\x02cposix\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03."


def evil_checkpoint() -> bytes:
    """A torch zip archive whose data.pkl calls os.system."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("evil/data.pkl", EVIL)
        archive.writestr("evil/byteorder", "little")
    return buffer.getvalue()


def leftovers(settings: ApiSettings) -> list[str]:
    """Anything an upload left behind: staged bytes, partial folders, unrecorded uploads."""
    found = list((settings.upload_root / "staging").glob("*"))
    for root in (settings.model_root, settings.data_root):
        found += list((root / "uploads").glob("*")) if (root / "uploads").is_dir() else []
    return [str(p) for p in found]


def test_a_model_upload_by_form_and_by_raw_body(http: httpx.Client, api_settings: ApiSettings) -> None:
    with MODEL_A.open("rb") as handle:
        created = http.post("/models", files={"file": ("ocec A (v1).pt", handle)})

    assert created.status_code == 201, created.text
    upload = created.json()
    assert created.headers["location"] == f"/models/{upload['id']}" == upload["link"]
    assert upload["path"] == f"uploads/{upload['id']}/ocec_A_v1_.pt" and upload["use_as"] == {
        "pretrain": upload["path"]
    }
    assert upload["size_bytes"] == MODEL_A.stat().st_size and len(upload["sha256"]) == 64
    assert upload["meta"]["checkpoint"]["format"] == "ocec" and upload["meta"]["checkpoint"]["tensors"] == 62
    assert (api_settings.model_root / upload["path"]).read_bytes() == MODEL_A.read_bytes()

    unnamed = http.post("/models", files={"file": (None, MODEL_A.read_bytes())})  # a part without a filename
    assert unnamed.status_code == 200 and unnamed.json()["id"] == upload["id"]
    again = http.post(
        "/models?filename=other.pt",
        content=MODEL_A.read_bytes(),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert again.status_code == 200 and again.json()["id"] == upload["id"]  # the same bytes: the same upload
    assert http.get(f"/models/{upload['id']}").json() == upload
    assert [u["id"] for u in http.get("/models").json()["data"]] == [upload["id"]]
    assert not list((api_settings.upload_root / "staging").glob("*"))


def test_a_job_names_uploads_by_their_path(http: httpx.Client, tmp_path: Path) -> None:
    model = http.post("/models", content=MODEL_A.read_bytes(), params={"filename": "a.pt"}).json()
    archive = zip_of(tmp_path / "d.zip", folder_entries("set", per_class=4))
    dataset = http.post("/datasets", files={"file": ("d.zip", archive.read_bytes())})
    assert dataset.status_code == 201, dataset.text

    job = http.post("/jobs", json={"name": "uploaded", **model["use_as"], **dataset.json()["use_as"]})

    assert job.status_code == 201, job.text
    assert job.json()["spec"]["pretrain"] == model["path"]
    assert job.json()["spec"]["data_root"] == dataset.json()["path"]


def test_a_parquet_dataset_upload(http: httpx.Client, api_settings: ApiSettings) -> None:
    with REFERENCE_PARQUET.open("rb") as handle:
        response = http.post("/datasets", files={"file": ("ocec.parquet", handle)})

    assert response.status_code == 201, response.text
    upload = response.json()
    assert upload["use_as"] == {"data_root": f"uploads/{upload['id']}"}
    assert upload["meta"]["dataset"]["counts"]["val"] == {"closed": 100, "open": 100}
    assert (api_settings.data_root / upload["path"] / "dataset.parquet").is_file()
    assert http.get(f"/datasets/{upload['id']}").status_code == 200
    assert http.get(f"/models/{upload['id']}").status_code == 404  # a dataset is not a model


def test_a_malicious_checkpoint_is_refused_and_nothing_is_kept(
    http: httpx.Client, api_settings: ApiSettings, tmp_path: Path
) -> None:
    response = http.post("/models", files={"file": ("evil.pt", evil_checkpoint())})

    assert response.status_code == 422
    problem = response.json()
    assert problem["errors"][0]["field"] == "file" and problem["errors"][0]["type"] == "checkpoint_unsafe"
    assert "posix.system" in problem["detail"]
    assert leftovers(api_settings) == []
    assert http.get("/models").json()["data"] == []


@pytest.mark.parametrize(
    ("route", "body", "kind"),
    [
        ("/models", b"just text", "checkpoint_format"),
        ("/datasets", b"just text", "dataset_format"),
        ("/datasets", b"PK\x05\x06" + b"\x00" * 18, "dataset_format"),  # an empty zip
    ],
)
def test_unusable_files_are_422_naming_the_file(
    http: httpx.Client, api_settings: ApiSettings, route: str, body: bytes, kind: str
) -> None:
    response = http.post(route, files={"file": ("x", body)})

    assert response.status_code == 422 and response.json()["errors"][0] == {
        "field": "file", "location": "body", "message": response.json()["errors"][0]["message"], "type": kind,
    }  # fmt: skip
    assert leftovers(api_settings) == []


def test_malformed_requests(http: httpx.Client) -> None:
    empty = http.post("/models", content=b"", headers={"Content-Type": "application/octet-stream"})
    assert empty.status_code == 422 and empty.json()["errors"][0]["type"] == "upload_empty"
    no_file = http.post("/models", files={"other": ("x.pt", b"123")})
    two_files = http.post("/models", files=[("file", ("a.pt", b"1")), ("file", ("b.pt", b"2"))])
    assert two_files.status_code == 422 and two_files.json()["errors"][0]["type"] == "multipart_invalid"
    assert no_file.status_code == 422 and no_file.json()["errors"][0]["type"] == "missing"
    no_boundary = http.post("/models", content=b"--x", headers={"Content-Type": "multipart/form-data"})
    assert no_boundary.status_code == 422
    assert http.get("/models/0123456789abcdef0123456789abcdef").status_code == 404


def test_uploads_need_a_key_and_writing_needs_an_operator(live_server: str, make_key: KeyMaker) -> None:
    viewer = make_key("vera", Role.VIEWER)
    with httpx.Client(base_url=live_server) as anonymous:
        assert anonymous.post("/models", content=MODEL_A.read_bytes()).status_code == 401
        assert anonymous.get("/datasets").status_code == 401
        refused = anonymous.post("/models", content=MODEL_A.read_bytes(), headers=viewer.headers)
        assert refused.status_code == 403
        assert anonymous.get("/models", headers=viewer.headers).status_code == 200


def test_pages_of_uploads(http: httpx.Client, tmp_path: Path) -> None:
    ids = []
    for i in range(3):
        state = {"w": torch.full((2,), float(i))}
        buffer = io.BytesIO()
        torch.save(state, buffer)
        ids.append(http.post("/models", content=buffer.getvalue()).json()["id"])
    first = http.get("/models", params={"limit": 2}).json()
    second = http.get("/models", params={"limit": 2, "cursor": first["next_cursor"]}).json()

    assert [u["id"] for u in first["data"] + second["data"]] == ids[::-1]
    assert second["next_cursor"] is None
    assert http.get("/models", params={"cursor": "nonsense"}).status_code == 422


@pytest.fixture
def small_server(api_settings: ApiSettings) -> Iterator[tuple[str, ApiSettings]]:
    settings = api_settings.model_copy(update={"max_upload_bytes": 64 << 10})
    with serve(settings) as base:
        yield base, settings


def test_an_upload_over_the_limit_is_413(
    small_server: tuple[str, ApiSettings], operator_key: object, make_key: KeyMaker
) -> None:
    base, settings = small_server
    key = make_key("big", Role.OPERATOR)
    with httpx.Client(base_url=base, headers=key.headers, timeout=30) as client:
        declared = client.post("/models", content=MODEL_A.read_bytes())  # 189 kB with a Content-Length

        def chunks() -> Iterator[bytes]:
            data = MODEL_A.read_bytes()
            for start in range(0, len(data), 16 << 10):
                yield data[start : start + (16 << 10)]

        streamed = client.post("/models", content=chunks())  # chunked: no length announced
        small = client.post("/models", files={"file": ("s.pt", _small_checkpoint())})

    assert declared.status_code == 413 and declared.headers["content-type"] == "application/problem+json"
    assert streamed.status_code == 413
    assert small.status_code == 201, small.text
    assert list((settings.upload_root / "staging").glob("*")) == []


def _small_checkpoint() -> bytes:
    buffer = io.BytesIO()
    torch.save({"w": torch.ones(3)}, buffer)
    return buffer.getvalue()


def test_an_upload_in_use_cannot_be_deleted_until_its_jobs_finish(
    http: httpx.Client, api_settings: ApiSettings, make_key: KeyMaker, tmp_path: Path
) -> None:
    model = http.post("/models", content=MODEL_A.read_bytes(), params={"filename": "a.pt"}).json()
    archive = zip_of(tmp_path / "d.zip", folder_entries("set", per_class=2))
    dataset = http.post("/datasets", files={"file": ("d.zip", archive.read_bytes())}).json()
    job = http.post("/jobs", json={"name": "uses-them", **model["use_as"], **dataset["use_as"]}).json()
    viewer = make_key("vera", Role.VIEWER)

    busy = [http.delete(f"/models/{model['id']}"), http.delete(f"/datasets/{dataset['id']}")]
    as_viewer = http.delete(f"/models/{model['id']}", headers=viewer.headers)

    for refused in busy:
        assert refused.status_code == 409 and refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"] == "urn:ocec-jobs:problem:in-use" and refused.json()["jobs"] == [
            job["id"]
        ]
        assert f"{job['id']} (queued)" in refused.json()["detail"]
    assert as_viewer.status_code == 403
    assert (api_settings.model_root / model["path"]).is_file()
    assert http.post(f"/jobs/{job['id']}/cancel").json()["job"]["state"] == "cancelled"

    assert http.delete(f"/models/{model['id']}").status_code == 204
    assert http.delete(f"/datasets/{dataset['id']}").status_code == 204
    assert not (api_settings.model_root / "uploads" / model["id"]).exists()
    assert not (api_settings.data_root / dataset["path"]).exists()
    assert http.get(f"/models/{model['id']}").status_code == 404
    assert http.delete(f"/datasets/{dataset['id']}").status_code == 404
