"""The race benchmark at its tiny size (one seed, shift 1.0, 96 images, 4 epochs): it runs the race
and its table agrees with the records. No figure is asserted: only what the rule implies."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import race as bench


def test_the_tiny_race_picks_a_finished_survivor_and_counts_its_cost(
    tmp_path: Path, bench_work: Path
) -> None:
    out = tmp_path / "race.md"
    assert bench.main(["--tiny", "--work", str(bench_work), "--out", str(out)]) == 0
    payload = json.loads(out.with_suffix(".json").read_text())
    [cell] = payload["cells"]
    assert payload["rungs"] == [2, 3]
    names = {*bench.CANDIDATES, bench.FULL}
    assert set(cell["fixed"]) == names
    cut = [name for d in cell["decisions"] for name in d["cut"]]
    assert len(cut) == 3 and cell["winner"] in names - set(cut)  # 4 -> 2 -> 1
    assert cell["race_f1"] == cell["fixed"][cell["winner"]]  # the survivor's run is its unbroken run
    # stage 1 once (1 epoch) + four candidates to epoch 2 + two to 3 + one to 4, vs 4 progressive epochs
    per_epoch = cell["progressive_sample_epochs"] / 4
    assert cell["race_sample_epochs"] == per_epoch * (1 + 3 * 1 + 2 + 2 * 1 + 1)
    assert f"| 1.00 | 0 | {cell['winner']} |" in out.read_text()
