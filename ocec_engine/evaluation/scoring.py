"""Scoring a model over a decoded set: P(open) per sample, in batches, with progress."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray
from torch import Tensor

from ocec_engine.evaluation.models import Scorer
from ocec_engine.normalize import normalize

Progress = Callable[[int, int], None]
BATCH = 256


def score_all(
    score: Scorer, x: Tensor, *, batch_size: int = BATCH, progress: Progress | None = None
) -> NDArray[np.float64]:
    """P(open) for every image of uint8 ``x`` [N, 3, H, W]; ``progress(done, total)`` after each batch."""
    n = len(x)
    out = np.empty(n, dtype=np.float64)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        out[start:stop] = score(normalize(x[start:stop]))
        if progress is not None:
            progress(stop, n)
    return out
