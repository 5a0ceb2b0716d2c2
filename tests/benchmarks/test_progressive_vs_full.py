"""The progressive-vs-full benchmark at its tiny size (one seed, shift 1.0, 96 images, 4 epochs):
the table is produced and agrees with itself and with the runs' own metrics and events.

No figure is asserted: only that every number the table states can be traced back to the records
(which come from the engine's hooks) and that the records obey the variants' definitions.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import progressive_vs_full as bench
from benchmarks.records import RunRecord
from benchmarks.report import BEGIN, END, HEADER, write_into
from benchmarks.summary import RunSummary, aggregate, summarize
from benchmarks.variants import BY_KEY, TINY, Kind, Variant, variants_at

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def produced(tmp_path_factory: pytest.TempPathFactory, bench_work: Path) -> tuple[Path, list[RunRecord]]:
    tmp = tmp_path_factory.mktemp("pvf")
    out = tmp / "out"
    out.mkdir()
    (out / "benchmark.md").write_text(f"# Kept title\n\nhand-written text\n\n{BEGIN}\nold\n{END}\n\nfooter\n")
    assert bench.main(["--tiny", "--work", str(bench_work), "--out", str(out)]) == 0
    [records] = bench_work.glob("records_tiny_local_*.json")
    payload = json.loads(records.read_text())
    return out, [RunRecord.from_dict(r) for r in payload["records"]]


def _by_variant(records: list[RunRecord]) -> dict[str, RunRecord]:
    return {r.variant: r for r in records}


def test_every_variant_is_run_and_in_the_table(produced: tuple[Path, list[RunRecord]]) -> None:
    out, records = produced
    expected = {v.key for v in variants_at(TINY, 1.0)}
    assert {r.variant for r in records} == expected
    text = (out / "benchmark.md").read_text()
    table = [line for line in text.splitlines() if line.startswith("| ") and line.count("|") == 11]
    for key in expected:
        assert sum(line.startswith(f"| {BY_KEY[key].label} |") for line in table) == 1, key
    assert HEADER in text
    assert (out / "img" / bench.MAIN_PLOT).read_bytes()[:8] == PNG_SIGNATURE
    assert (out / "img" / bench.PROBE_PLOT).read_bytes()[:8] == PNG_SIGNATURE


def test_the_hand_written_text_around_the_generated_section_is_kept(
    produced: tuple[Path, list[RunRecord]],
) -> None:
    text = (produced[0] / "benchmark.md").read_text()
    assert text.startswith("# Kept title\n\nhand-written text\n\n" + BEGIN)
    assert text.endswith(END + "\n\nfooter\n")
    assert "\nold\n" not in text and text.count(BEGIN) == 1


def test_values_are_f1s_and_epochs_within_the_budget(produced: tuple[Path, list[RunRecord]]) -> None:
    for record in produced[1]:
        s = summarize(record)
        for name in ("f1_a_on_b", "stage1_end_f1", "final_f1", "best_f1", "worst_drop"):
            value = getattr(s, name)
            assert value is None or 0.0 <= value <= 1.0, (record.variant, name, value)
        if BY_KEY[record.variant].kind is not Kind.MODEL_A:
            assert [r["epoch"] for r in record.rows] == list(range(1, TINY.epochs + 1)), record.variant
            assert s.best_epoch is not None and 1 <= s.best_epoch <= TINY.epochs
            assert s.seconds_to_best is not None and s.seconds_to_best >= 0


def test_best_final_and_stage1_values_are_rows_of_the_run(produced: tuple[Path, list[RunRecord]]) -> None:
    for record in produced[1]:
        if BY_KEY[record.variant].kind is Kind.MODEL_A:
            continue
        s, rows = summarize(record), {r["epoch"]: r for r in record.rows}
        assert s.final_f1 == rows[TINY.epochs]["val_f1"]
        assert s.best_f1 == max(r["val_f1"] for r in record.rows) == rows[s.best_epoch]["val_f1"]
        last = rows[TINY.epochs]
        assert (last["best_f1"], last["best_epoch"]) == (s.best_f1, s.best_epoch), "engine's own best"
        assert s.seconds_to_best == sum(r["epoch_seconds"] for e, r in rows.items() if e <= s.best_epoch)
        if s.stage1_end_epoch is not None:
            assert s.stage1_end_f1 == rows[s.stage1_end_epoch]["val_f1"]
            assert rows[s.stage1_end_epoch]["stage"] == 1
            after = rows.get(s.stage1_end_epoch + 1)
            assert after is None or after["stage"] == 2


def test_model_a_row_is_the_start_evaluation_of_every_pretrained_run(
    produced: tuple[Path, list[RunRecord]],
) -> None:
    runs = _by_variant(produced[1])
    a = runs["model_a"].initial_f1
    assert a is not None and 0.0 <= a <= 1.0
    for key, record in runs.items():
        if BY_KEY[key].kind is not Kind.SCRATCH:
            assert record.initial_f1 == a, key
    assert summarize(runs["scratch"]).f1_a_on_b is None


def test_stage_columns_agree_with_the_stage_events_and_gate_reads(
    produced: tuple[Path, list[RunRecord]],
) -> None:
    for record in produced[1]:
        variant, s = BY_KEY[record.variant], summarize(record)
        entries = [e for e in record.stage_events if e["to_stage"] == 2]
        stage2_rows = [r["epoch"] for r in record.rows if r["stage"] == 2]
        if variant.kind is Kind.PROGRESSIVE:
            _check_progressive(variant, record, s, entries, stage2_rows)
        else:
            assert not entries and not stage2_rows and not record.gate_checks, record.variant
            assert s.gate_opened is None
        if variant.kind in (Kind.FULL, Kind.SCRATCH):
            assert {r["plan"] for r in record.rows} == {"full"} and s.unfreeze_epoch == (
                1 if variant.kind is Kind.FULL else None
            )


def _check_progressive(
    variant: Variant, record: RunRecord, s: RunSummary, entries: list[dict], stage2: list[int]
) -> None:
    gate_epoch = variant.gate_epoch(TINY)
    assert gate_epoch is not None and s.gate_read
    assert all(g["epoch"] >= gate_epoch for g in record.gate_checks)
    opened = [g for g in record.gate_checks if g["passed"]]
    assert s.gate_opened == bool(opened)
    assert len(entries) <= 1, "stage 2 is entered once"
    if entries:
        [entry] = entries
        assert stage2 == list(range(entry["epoch"], TINY.epochs + 1))
        assert s.unfreeze_epoch == entry["epoch"]
        assert (entry["trigger"] == "gate") == bool(opened) == bool(s.stage2_by_gate)
        curve = {r["epoch"]: r["val_f1"] for r in record.rows} | {0: record.initial_f1}
        assert s.unfreeze_delta == pytest.approx(curve[entry["epoch"]] - curve[entry["epoch"] - 1])
    else:
        assert not stage2 and not opened and s.unfreeze_epoch is None
    if variant.stage2.get("on_gate_fail") == "proceed":
        assert entries and entries[0]["epoch"] == gate_epoch, "forced: stage 2 at the gate epoch"
    else:  # keep-trying: only an open gate enters stage 2; closed to the end, the run stops
        assert bool(entries) == bool(opened)
        assert entries or record.outcome == "stopped"


def test_forks_share_the_head_only_stage_1(produced: tuple[Path, list[RunRecord]]) -> None:
    runs = _by_variant(produced[1])
    head = {r["epoch"]: r for r in runs["head"].rows}
    for key, record in runs.items():
        fork = BY_KEY[key].fork_epoch(TINY)
        if fork is None:
            continue
        assert record.forked_at == fork
        for row in record.rows[:fork]:
            assert row == head[row["epoch"]], (key, row["epoch"])


def test_aggregate_counts_match_the_runs(produced: tuple[Path, list[RunRecord]]) -> None:
    summaries = [summarize(r) for r in produced[1]]
    for row in aggregate(summaries):
        mine = [s for s in summaries if s.variant == row.variant]
        assert row.seeds == len(mine) == len(TINY.seeds)
        assert row.gate_opened == sum(bool(s.gate_opened) for s in mine)
        final = row.values["final_f1"]
        assert final is not None and final.mean == pytest.approx(mine[0].final_f1)


def test_write_into_creates_a_file_with_a_title(tmp_path: Path) -> None:
    target = tmp_path / "new" / "benchmark.md"
    write_into(target, f"{BEGIN}\nx\n{END}", "Title")
    assert target.read_text() == f"# Title\n\n{BEGIN}\nx\n{END}\n"
