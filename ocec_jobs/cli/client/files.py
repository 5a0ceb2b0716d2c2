"""``download`` (best .pt / .onnx / plot.png / any checkpoint), ``upload-model``, ``upload-dataset``."""

from __future__ import annotations

import argparse
import hashlib
import os
from pathlib import Path, PurePosixPath
from typing import Any

from jobstore.artifacts import ALIASES, BEST_PT
from ocec_jobs.cli.client.args import add, usage
from ocec_jobs.cli.client.connection import Api, target_of
from ocec_jobs.cli.client.exitcodes import Exit
from ocec_jobs.cli.client.render import print_json, upload_text
from ocec_jobs.cli.client.urls import job_path

PLOT = "plot.png"
ARTIFACTS = (*ALIASES, PLOT)
UPLOAD_READ_TIMEOUT = 3600.0  # the server checks every image of a dataset before it answers
CHUNK = 1 << 16


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    download = add(
        subparsers, "download", run_download, "download a job's best.pt, best.onnx, plot.png …", [common]
    )
    download.add_argument("job_id", metavar="JOB")
    download.add_argument(
        "artifact",
        nargs="?",
        metavar="ARTIFACT",
        default=BEST_PT,
        help=f"{', '.join(ARTIFACTS)} or a checkpoint path from /checkpoints (default best.pt)",
    )
    download.add_argument(
        "-o", "--output", type=Path, help="file to write (default: the artifact's name here)"
    )
    download.add_argument("--force", action="store_true", help="overwrite an existing file")

    for name, collection, what in (
        ("upload-model", "/models", "a checkpoint (.pt) to use as a job's pretrain"),
        ("upload-dataset", "/datasets", "an OCEC parquet file or a zip of open/ and closed/ folders"),
    ):
        parser = add(subparsers, name, _uploader(collection), f"upload {what}", [common])
        parser.add_argument("file", type=Path, metavar="FILE")


def run_download(args: argparse.Namespace) -> int:
    name = str(args.artifact)
    path = job_path(args.job_id, PLOT) if name == PLOT else job_path(args.job_id, "artifacts", name)
    target: Path = args.output or Path(PurePosixPath(name).name)
    if target.exists() and not args.force:
        raise usage(f"{target} exists: pass --force to overwrite it, or -o another file")
    partial = target.with_name(f".{target.name}.partial")
    digest, size = hashlib.sha256(), 0
    try:
        with Api(target_of(args)) as api, api.stream("GET", path) as response, partial.open("wb") as out:
            for chunk in response.iter_bytes(CHUNK):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
    except BaseException:
        partial.unlink(missing_ok=True)  # never leave half a file behind
        raise
    os.replace(partial, target)
    sha256 = digest.hexdigest()
    result = {"path": str(target), "bytes": size, "sha256": sha256}
    print_json(result) if args.json else print(f"{target}  {size} bytes  sha256 {sha256[:12]}…")
    return int(Exit.OK)


def _uploader(collection: str) -> Any:
    def run(args: argparse.Namespace) -> int:
        file: Path = args.file
        if not file.is_file():
            raise usage(f"{file}: no such file")
        import httpx

        timeout = httpx.Timeout(args.timeout, read=max(args.timeout, UPLOAD_READ_TIMEOUT))
        with Api(target_of(args)) as api, file.open("rb") as handle:
            files = {"file": (file.name, handle, "application/octet-stream")}
            response = api.request("POST", collection, files=files, timeout=timeout)
        upload: dict[str, Any] = response.json()
        if args.json:
            print_json(upload)
        else:
            again = " (the same file was uploaded before)" if response.status_code == 200 else ""
            print(upload_text(upload) + again)
        return int(Exit.OK)

    return run
