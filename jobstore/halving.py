"""The race's decision rule (successive halving), pure: no database, no clock.

At a rung (an epoch of the budget) every live candidate that has reached it is ranked by its best val
F1 up to that epoch (the model it would keep if it stopped there, as the winner is judged at the end),
ties broken by the lower val loss, then by name (so the order is total and repeatable); the best
``ceil(n * keep_fraction)`` (at least one) go on, the rest are cut. A candidate an operator extended
survives the rung whatever its rank. At the end the winner is the best finished candidate by its best
val F1 (same tie rules) that is not below the retention floor on the source domain.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Standing:
    """One candidate's numbers at a rung (or, for the winner, its best epoch)."""

    name: str
    val_f1: float | None  # None: no reading at this epoch (it failed or was stopped before it)
    val_loss: float | None = None
    epoch: int | None = None
    retention_f1: float | None = None  # F1 of its best model on the source domain A, when evaluated
    protected: bool = False  # extended by an operator: survives this rung

    def key(self) -> tuple[float, float, str]:
        f1 = -1.0 if self.val_f1 is None else self.val_f1
        loss = math.inf if self.val_loss is None else self.val_loss
        return (-f1, loss, self.name)

    def numbers(self) -> dict[str, float | int | str | bool | None]:
        return {
            "candidate": self.name, "val_f1": self.val_f1, "val_loss": self.val_loss, "epoch": self.epoch,
            "retention_f1": self.retention_f1, "protected": self.protected,
        }  # fmt: skip


@dataclass(frozen=True)
class Cut:
    rung: int
    kept: list[str]
    cut: list[str]
    ranking: list[Standing] = field(default_factory=list)

    def reason(self) -> str:
        board = ", ".join(f"{s.name} {_f1(s.val_f1)}" for s in self.ranking)
        if not self.cut:
            return f"rung epoch {self.rung}: all {len(self.kept)} go on ({board})"
        return f"rung epoch {self.rung}: kept {', '.join(self.kept)}; cut {', '.join(self.cut)} ({board})"


@dataclass(frozen=True)
class Verdict:
    winner: str | None
    reason: str
    ranking: list[Standing] = field(default_factory=list)
    disqualified: list[str] = field(default_factory=list)


def standing_at(
    name: str, f1: Mapping[int, float], loss: Mapping[int, float], rung: int, *, protected: bool = False
) -> Standing:
    """A candidate's standing at ``rung`` from its per-epoch val F1 and loss: its best epoch up to the
    rung (higher F1, then lower loss, then earlier), or no reading when it has none at the rung itself
    (it ended before it). The best so far rather than the rung's own epoch: one noisy epoch neither
    saves nor sinks a recipe (benchmarks/race.py measured both, docs/race.md)."""
    if rung not in f1:
        return Standing(name, None, None, rung, protected=protected)
    best = min((e for e in f1 if e <= rung), key=lambda e: (-f1[e], loss.get(e, math.inf), e))
    return Standing(name, f1[best], loss.get(best), best, protected=protected)


def default_rungs(unfreeze: int, epochs: int) -> list[int]:
    """Two rungs in the stage-2 part of the budget, a quarter and a half of the way (fewer when it is
    too short to hold two distinct epochs in [unfreeze, epochs))."""
    return sorted({r for k in (1, 2) if unfreeze <= (r := unfreeze + (epochs - unfreeze) * k // 4) < epochs})


def rank(standings: Sequence[Standing]) -> list[Standing]:
    """Best first: higher val F1, then lower val loss, then name; no reading ranks last."""
    return sorted(standings, key=Standing.key)


def keep_count(n: int, keep_fraction: float) -> int:
    return max(1, math.ceil(n * keep_fraction - 1e-9))


def rung_cut(standings: Sequence[Standing], *, rung: int, keep_fraction: float) -> Cut:
    """Who goes on past ``rung``: the top ``keep_count`` with a reading, plus the protected ones."""
    ranking = rank(standings)
    readable = [s for s in ranking if s.val_f1 is not None]
    top = {s.name for s in readable[: keep_count(len(readable), keep_fraction)]}
    kept = [s.name for s in ranking if s.name in top or (s.protected and s.val_f1 is not None)]
    cut = [s.name for s in ranking if s.name not in kept]
    return Cut(rung, kept, cut, ranking)


def leader_cut(standings: Sequence[Standing], *, rung: int) -> Cut:
    """Only the best goes on (the budget is spent, or an operator stopped the halving)."""
    return rung_cut([Standing(**{**s.__dict__, "protected": False}) for s in standings], rung=rung,
                    keep_fraction=1e-9)  # fmt: skip


def pick_winner(finished: Sequence[Standing], *, retention_floor: float | None = None) -> Verdict:
    """The best finished candidate not below ``retention_floor`` (F1 on domain A), with why."""
    ranking = rank([s for s in finished if s.val_f1 is not None])
    out = [
        s.name
        for s in ranking
        if retention_floor is not None and s.retention_f1 is not None and s.retention_f1 < retention_floor
    ]
    eligible = [s for s in ranking if s.name not in out]
    if not eligible:
        why = (
            "no candidate finished"
            if not ranking
            else "every finished candidate is below the retention floor"
        )
        return Verdict(None, why, ranking, out)
    best = eligible[0]
    reason = f"{best.name}: best val F1 {_f1(best.val_f1)} (epoch {best.epoch})"
    if len(eligible) > 1:
        runner = eligible[1]
        reason += f" vs {runner.name} {_f1(runner.val_f1)}"
        if runner.val_f1 == best.val_f1:
            reason += f", tie broken by val loss {best.val_loss} < {runner.val_loss}"
    if out:
        reason += f"; below the retention floor {retention_floor}: {', '.join(out)}"
    return Verdict(best.name, reason, ranking, out)


def _f1(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"
