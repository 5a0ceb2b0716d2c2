"""The job body from a spec file (JSON, YAML), flags and --set."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from ocec_jobs.cli.client.exitcodes import ClientError, Exit
from ocec_jobs.cli.client.spec import add_spec_flags, spec_from, upload_reference


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_spec_flags(parser)
    return parser.parse_args(argv)


def test_flags_override_the_file_and_set_reaches_sections(tmp_path: Path) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text(
        "name: from-file\ndata_root: B\nlr: 0.0001\nstage2:\n  gate_f1: 0.8\n  on_gate_fail: stop\n"
    )
    body = spec_from(
        parse("--spec", str(spec), "--lr", "5e-5", "--gate-f1", "0.75", "--use-amp", "--no-freeze-backbone",
              "--set", "stage2.on_gate_fail=pause", "--set", "stage3={\"gate_f1\": 0.9}", "--set", "name=x=y")
    )  # fmt: skip
    assert body == {
        "name": "x=y", "data_root": "B", "lr": 5e-5, "use_amp": True, "freeze_backbone": False,
        "stage2": {"gate_f1": 0.75, "on_gate_fail": "pause"}, "stage3": {"gate_f1": 0.9},
    }  # fmt: skip


def test_a_json_spec_and_flags_alone(tmp_path: Path) -> None:
    spec = tmp_path / "job.json"
    spec.write_text(json.dumps({"data_root": "B", "epochs": 3}))
    assert spec_from(parse("--spec", str(spec))) == {"data_root": "B", "epochs": 3}
    assert spec_from(parse("--data-root", "B", "--epochs", "5")) == {"data_root": "B", "epochs": 5}


@pytest.mark.parametrize(
    ("content", "words"),
    [("{not json", "not valid JSON"), ("[1, 2]", "mapping of fields"), (None, "cannot read")],
)
def test_bad_spec_files_are_usage_errors(tmp_path: Path, content: str | None, words: str) -> None:
    spec = tmp_path / "job.json"
    if content is not None:
        spec.write_text(content)
    with pytest.raises(ClientError) as error:
        spec_from(parse("--spec", str(spec)))
    assert error.value.code == Exit.USAGE and words in error.value.message


def test_a_dataset_is_required_and_set_needs_a_value() -> None:
    with pytest.raises(ClientError, match="--data-root"):
        spec_from(parse("--epochs", "3"))
    with pytest.raises(ClientError, match="KEY=VALUE"):
        spec_from(parse("--data-root", "B", "--set", "novalue"))


def test_upload_references() -> None:
    assert upload_reference("upload:abc") == "abc"
    assert upload_reference("uploads/abc") is None and upload_reference(None) is None


def test_race_flags_make_a_race_section() -> None:
    assert spec_from(parse("--data-root", "B", "--race")) == {"data_root": "B", "race": {}}
    body = spec_from(
        parse("--data-root", "B", "--race-rungs", "6,9", "--race-keep", "0.34", "--race-budget", "900")
    )
    assert body["race"] == {"rungs": [6, 9], "keep_fraction": 0.34, "budget_sample_epochs": 900}
    with pytest.raises(SystemExit):
        parse("--race-rungs", "six")
