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
    return keep_columns(stages, list(zip(*values, strict=True)), points)


def keep_columns(stages: Sequence[int], values: Sequence[Values], points: int) -> list[int]:
    """``keep`` of the values given column by column (one sequence per charted value, as long as
    ``stages``): what a read of the columns gives without building a tuple per row."""
    total = len(stages)
    if total <= points:
        return list(range(total))
    kept = set(stage_edges(stages))
    columns = [searchable(column) for column in values]
    buckets = bucket_count(points)
    for b in range(buckets):
        start, end = total * b // buckets, total * (b + 1) // buckets
        if start < end:
            kept |= extremes(columns, start, end)
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


def searchable(column: Sequence[float | None]) -> tuple[list[float], list[float]]:
    """A column twice, a missing or non-finite value as +inf (never a minimum) and as -inf (never a
    maximum), so a bucket's extremes are found by ``min``/``max``/``index`` on plain float lists."""
    plain = [v for v in column if v is not None]
    if len(plain) == len(column) and all(map(math.isfinite, plain)):  # the usual column: one copy
        return plain, plain
    finite = [v is not None and math.isfinite(v) for v in column]
    low = [v if ok else math.inf for v, ok in zip(column, finite, strict=True)]
    high = [v if ok else -math.inf for v, ok in zip(column, finite, strict=True)]
    return low, high  # type: ignore[return-value]  # a value is a float wherever ``ok``


def extremes(columns: Sequence[tuple[list[float], list[float]]], start: int, end: int) -> set[int]:
    """First and last index of ``[start, end)`` and, for each column (``searchable``), the first index
    of its minimum and the last of its maximum in it."""
    found = {start, end - 1}
    for low, high in columns:
        smallest = min(low[start:end])
        if smallest == math.inf:  # nothing finite in this bucket
            continue
        found.add(low.index(smallest, start, end))
        top = high[start:end]
        found.add(end - 1 - top[::-1].index(max(top)))
    return found
