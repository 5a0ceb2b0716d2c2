"""The best checkpoint of a resumed run, and how a finished run compares with its starting weights.

``carry_best``: on resume, ``best.pt`` of the output folder must be the restored run's best epoch.
Resuming into a new ``output_dir`` it is copied from the source run's folder (``best.pt``, or the
per-epoch file of that epoch); a ``best.pt`` left by an abandoned later timeline is replaced. Without
any such file the best restarts in the new folder (the caller resets it).
"""

from __future__ import annotations

from pathlib import Path

from ocec_engine.checkpoint import Layout, load, serialize, write_atomic
from ocec_engine.errors import EngineError
from ocec_engine.hooks import CheckpointInfo, CheckpointKind
from ocec_engine.runstate import RunState


def carry_best(state: RunState, layout: Layout, resumed_from: str) -> CheckpointInfo | None:
    """Make ``layout.best`` hold ``state``'s best epoch; the info of a file written, else None.

    Raises ``LookupError`` when no file holds that epoch any more (pruned, overwritten).
    """
    if state.best_f1 is None or state.best_epoch <= 0:
        return None
    want = (state.best_epoch, state.best_f1)
    if best_of(layout.best) == want:
        return None
    source = next((p for p in _sources(layout, resumed_from, state.best_epoch) if best_of(p) == want), None)
    if source is not None:
        size = write_atomic(layout.best, source.read_bytes())
    elif state.completed == state.best_epoch and state.partial is None:  # the restored state itself
        size = write_atomic(layout.best, serialize(state.to_checkpoint()))
    else:
        raise LookupError(f"no file holds best epoch {state.best_epoch}")
    rows = (int(r["stage"]) for r in state.history if int(r["epoch"]) == state.best_epoch)
    stage = next(rows, state.stage.stage)
    return CheckpointInfo(str(layout.best), CheckpointKind.BEST, state.best_epoch, stage, state.best_f1, size)


def _sources(layout: Layout, resumed_from: str, epoch: int) -> list[Path]:
    """The source run's best.pt and per-epoch file of ``epoch``, and this folder's per-epoch file."""
    folder = Path(resumed_from).parent
    folder = folder.parent if folder.name == Layout(folder).epochs_dir.name else folder
    return [Layout(folder).best, Layout(folder).epoch(epoch), layout.epoch(epoch)]


def best_of(path: Path) -> tuple[int, float | None] | None:
    """(epoch, val F1) of the checkpoint at ``path``; None when there is no readable one."""
    if not path.is_file():
        return None
    try:
        data = load(path)
    except EngineError:
        return None
    f1 = (data.get("val_metrics") or {}).get("f1")
    return int(data.get("epoch", 0)), None if f1 is None else float(f1)


def baseline_note(state: RunState) -> str:
    """The reason's addition when no epoch beat the starting weights (else empty)."""
    if state.beats_baseline() is not False or state.initial_val is None:
        return ""
    return (
        f"; no epoch beat the starting weights (val F1 {float(state.initial_val['f1']):.4f} before "
        f"epoch 1; best epoch {state.best_epoch}: {state.best_f1:.4f})"
    )
