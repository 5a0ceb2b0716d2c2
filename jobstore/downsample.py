"""Thin a long per-epoch series for a chart without losing what a reader looks for.

The rows are cut into equal buckets (by position); each bucket keeps its first and last row and, for
every charted value, the rows holding its minimum and maximum, so a spike or a dip survives however
long the run is. The first and last row of every stage are kept too, so the stage boundaries sit
where they are. Pure functions of the values: the API's metrics route uses them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

# What a row looks like here: its stage and the values a chart draws (None where missing).
Values = Sequence[float | None]
ROWS_PER_BUCKET = 4  # M4: first, min, max, last; a bucket of a multi-value row may keep more


def bucket_count(points: int) -> int:
    """Buckets for a target of about ``points`` rows."""
    return max(1, points // ROWS_PER_BUCKET)


def keep(stages: Sequence[int], values: Sequence[Values], points: int) -> list[int]:
    """Indexes (ascending) of the rows to keep; all of them when there are no more than ``points``."""
    total = len(stages)
    if total <= points:
        return list(range(total))
    kept = set(stage_edges(stages))
    buckets = bucket_count(points)
    for b in range(buckets):
        start, end = total * b // buckets, total * (b + 1) // buckets
        if start < end:
            kept |= extremes(values, start, end)
    return sorted(kept)


def stage_edges(stages: Sequence[int]) -> list[int]:
    """The first and last index of every run of equal stages."""
    edges = []
    for i, stage in enumerate(stages):
        if i == 0 or stages[i - 1] != stage:
            edges.append(i)
        if i == len(stages) - 1 or stages[i + 1] != stage:
            edges.append(i)
    return edges


def extremes(values: Sequence[Values], start: int, end: int) -> set[int]:
    """First and last index of ``[start, end)`` and the index of each value's min and max in it."""
    found = {start, end - 1}
    for column in range(len(values[start])):
        present = [
            (v, i) for i in range(start, end) if (v := values[i][column]) is not None and math.isfinite(v)
        ]
        if present:
            found |= {min(present)[1], max(present)[1]}
    return found
