"""Operator commands from ``hooks.poll_commands()`` and ``hooks.should_stop()``.

FORCE_STAGE is queued (in ``StageState.pending_commands``, so it survives an interrupt) and applied
at the next epoch boundary; PAUSE / CANCEL / should_stop end the run at the next batch boundary.
Every command id is handled once: ids already handled or queued are ignored (also across a resume,
since the ids live in the checkpointed stage state).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ocec_engine.hooks import Command, CommandKind, Outcome, TrainingHooks
from ocec_engine.stages import StageState

STOP_OUTCOMES = {CommandKind.PAUSE: Outcome.PAUSED, CommandKind.CANCEL: Outcome.CANCELLED}


@dataclass
class StopRequest:
    outcome: Outcome
    reason: str
    commands: list[Command] = field(default_factory=list)  # the PAUSE / CANCEL commands to confirm


def command_to_dict(command: Command) -> dict[str, Any]:
    return {
        "kind": command.kind.value,
        "command_id": command.command_id,
        "params": dict(command.params),
        "actor": command.actor,
        "reason": command.reason,
    }


def command_from_dict(data: dict[str, Any]) -> Command:
    return Command(
        kind=CommandKind(data["kind"]),
        command_id=str(data["command_id"]),
        params=dict(data.get("params", {})),
        actor=str(data.get("actor", "operator")),
        reason=str(data.get("reason", "")),
    )


def poll(hooks: TrainingHooks, state: StageState, stop: StopRequest | None) -> StopRequest | None:
    """Read new commands into ``state``; return the (first) stop request, if any."""
    queued = {c["command_id"] for c in state.pending_commands}
    for command in hooks.poll_commands():
        if command.command_id in state.handled_commands or command.command_id in queued:
            continue
        if command.kind is CommandKind.FORCE_STAGE:
            state.pending_commands.append(command_to_dict(command))
            queued.add(command.command_id)
            continue
        state.handled_commands.append(command.command_id)
        reason = f"{command.kind.value} by {command.actor}" + (
            f": {command.reason}" if command.reason else ""
        )
        if stop is None:
            stop = StopRequest(STOP_OUTCOMES[command.kind], reason)
        stop.commands.append(command)
    if stop is None:
        why = hooks.should_stop()
        if why:
            stop = StopRequest(Outcome.PREEMPTED, f"preempted: {why}")
    return stop


def take_pending(state: StageState) -> list[Command]:
    """Dequeue the FORCE_STAGE commands (marking them handled)."""
    commands = [command_from_dict(c) for c in state.pending_commands]
    state.pending_commands.clear()
    state.handled_commands.extend(c.command_id for c in commands)
    return commands
