"""The race benchmark at its tiny size (one seed, shift 1.0, 96 images, 4 epochs): it trains every
candidate's curve, replays the race on them with the server's rule and its table agrees with the
records; a saved curve file replays to the same table. No figure is asserted: only what the rule implies."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import race as bench


def test_the_tiny_race_picks_a_survivor_counts_its_cost_and_replays(tmp_path: Path, bench_work: Path) -> None:
    out = tmp_path / "race.md"
    assert bench.main(["--tiny", "--work", str(bench_work), "--out", str(out)]) == 0
    saved = json.loads(out.with_suffix(".json").read_text())
    [record] = saved["cells"]
    names = {*bench.CANDIDATES, bench.FULL}
    assert set(record["curves"]) == names | {"stage1"}
    assert all(len(record["curves"][n]["f1"]) == 4 for n in names)  # each to the end of the budget
    cell = bench.judged(record, saved["budget"], [2, 3], 0.5)
    cut = [name for d in cell["decisions"] for name in d["cut"]]
    assert len(cut) == 3 and cell["winner"] in names - set(cut)  # 4 -> 2 -> 1
    assert cell["race_f1"] == max(record["curves"][cell["winner"]]["f1"].values())
    # stage 1 once (1 epoch) + four candidates to epoch 2 + two to 3 + one to 4, vs 4 progressive epochs
    per_epoch = cell["progressive_sample_epochs"] / 4
    assert cell["race_sample_epochs"] == per_epoch * (1 + 3 * 1 + 2 + 2 * 1 + 1)
    assert f"| 1.00 | 0 | {cell['winner']} |" in out.read_text()
    again = tmp_path / "again.md"
    saved_curves = str(out.with_suffix(".json"))
    assert bench.main(["--curves", saved_curves, "--rungs", "2", "3", "--sweep", "--out", str(again)]) == 0
    table = lambda text: text[text.index("| shift") :]  # noqa: E731 (the header line says how it ran)
    replayed = again.read_text()
    assert table(replayed).startswith(table(out.read_text()))  # the same race, then the sweep
    assert "| best | [2, 3] |" in replayed and "| at | [2, 3] |" in replayed
