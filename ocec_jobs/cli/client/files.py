"""``download`` (best .pt / .onnx / plot.png / any checkpoint), ``upload-model``, ``upload-dataset``."""

from __future__ import annotations

import argparse
from pathlib import Path, PurePosixPath
from typing import Any

from jobstore.artifacts import ALIASES, BEST_PT
from ocec_jobs.cli.client.args import add, usage
from ocec_jobs.cli.client.connection import connect, target_of
from ocec_jobs.cli.client.exitcodes import Exit
from ocec_jobs.cli.client.render import print_json, upload_text

ARTIFACTS = (*ALIASES, "plot.png")  # the plot is Client.download's too (ocec_jobs.client.client.PLOT)


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
    target: Path = args.output or Path(PurePosixPath(name).name)
    if target.exists() and not args.force:
        raise usage(f"{target} exists: pass --force to overwrite it, or -o another file")
    with connect(target_of(args)) as client:
        done = client.download(args.job_id, name, target, overwrite=True)
    result = {"path": str(done.path), "bytes": done.bytes, "sha256": done.sha256}
    print_json(result) if args.json else print(f"{target}  {done.bytes} bytes  sha256 {done.sha256[:12]}…")
    return int(Exit.OK)


def _uploader(collection: str) -> Any:
    def run(args: argparse.Namespace) -> int:
        file: Path = args.file
        if not file.is_file():
            raise usage(f"{file}: no such file")
        with connect(target_of(args)) as client:
            done = client.upload_model(file) if collection == "/models" else client.upload_dataset(file)
        if args.json:
            print_json(done.upload)
        else:
            again = "" if done.created else " (the same file was uploaded before)"
            print(upload_text(done.upload) + again)
        return int(Exit.OK)

    return run
