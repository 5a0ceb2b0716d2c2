"""jobstore.downsample: a long series thinned for a chart keeps its extremes and stage edges."""

from __future__ import annotations

import random

from jobstore.downsample import bucket_count, keep, stage_edges


def test_short_series_are_kept_whole() -> None:
    assert keep([1, 1, 2], [[0.1], [0.2], [0.3]], points=3) == [0, 1, 2]


def test_every_bucket_keeps_the_min_and_max_of_every_value() -> None:
    rng = random.Random(7)
    total, points = 1000, 40
    values = [[rng.random(), rng.random() * 10] for _ in range(total)]
    values[503][0], values[777][1] = -5.0, 99.0  # a dip and a spike deep inside buckets
    kept = keep([1] * total, values, points)
    buckets = bucket_count(points)
    for b in range(buckets):
        start, end = total * b // buckets, total * (b + 1) // buckets
        for column in (0, 1):
            inside = range(start, end)
            low = min(inside, key=lambda i: values[i][column])
            high = max(inside, key=lambda i: values[i][column])
            assert {start, end - 1, low, high} <= set(kept)
    assert {503, 777} <= set(kept)
    assert len(kept) < total // 5


def test_stage_boundaries_are_kept_and_missing_values_skipped() -> None:
    stages = [1] * 600 + [2] * 300 + [3] * 100
    values = [[None, float("nan") if i % 2 else float(i % 17)] for i in range(len(stages))]
    kept = keep(stages, values, points=8)
    assert {0, 599, 600, 899, 900, 999} <= set(kept)
    bucket_ends = {0, 499, 500, 999}
    assert all(i % 2 == 0 for i in set(kept) - set(stage_edges(stages)) - bucket_ends)


def test_stage_edges_are_the_first_and_last_of_each_run() -> None:
    assert stage_edges([1, 1, 2, 2, 2, 1]) == [0, 1, 2, 4, 5, 5]


def test_ties_keep_the_first_minimum_and_the_last_maximum_and_infinities_are_skipped() -> None:
    inf = float("inf")
    values = [[1.0], [0.0], [inf], [0.0], [2.0], [2.0], [-inf], [1.0]]  # one bucket (points=4)
    assert keep([1] * len(values), values, points=4) == [0, 1, 5, 7]
