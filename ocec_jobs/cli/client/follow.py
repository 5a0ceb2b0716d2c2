"""``ocec-jobs follow JOB``: a job's stream (``GET /jobs/{id}/stream``) as a live progress bar.

Everything the job recorded is replayed first, then followed live: one bar over the epochs (stage,
val F1 and loss in its postfix; on a terminal), a line per stage transition, state change, gate
read and operator command as it happens. Without a terminal (a log, a pipe) each epoch is a line
instead of a bar. ``--json`` prints each stream message as one JSON line.

The command ends with the job: exit 0 succeeded, 1 failed, 7 cancelled; 8 when the job waits for a
person (paused, awaiting a gate decision) unless ``--keep-waiting``. A cut stream is resumed after
the last event id it delivered (nothing lost or repeated); after ``RECONNECT_SECONDS`` without the
server it gives up with exit 3.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TextIO

from jobstore.text import visible, visible_data
from ocec_jobs.cli.client.exitcodes import JOB_STATE_EXITS, WAITING_STATES, Exit
from ocec_jobs.cli.client.render import f1

if TYPE_CHECKING:
    from tqdm import tqdm

    from ocec_jobs.client import Client, Message

RECONNECT_SECONDS = 60.0
END, METRIC = "end", "metric"


def follow_job(
    client: Client, job_id: str, *, as_json: bool, keep_waiting: bool, progress: bool | None = None
) -> Exit:
    """Follow ``job_id`` to its end (or to a state that needs a person); the exit code of its outcome."""
    status = client.get_job(job_id)
    view = FollowView(status, as_json=as_json, progress=sys.stderr.isatty() if progress is None else progress)
    try:
        return _follow(client, job_id, view, keep_waiting)
    finally:
        view.close()


def _follow(client: Client, job_id: str, view: FollowView, keep_waiting: bool) -> Exit:
    def reconnecting(_: object) -> None:
        view.note("stream cut; reconnecting")

    for message in client.stream(job_id, reconnect_seconds=RECONNECT_SECONDS, on_reconnect=reconnecting):
        outcome = view.show(message)
        if outcome is None and not keep_waiting:
            outcome = _waiting(client, job_id, message, view)
        if outcome is not None:
            return outcome
    return Exit.SERVER_ERROR  # the stream ends with its `end` event, which view.show turned into an exit


def _waiting(client: Client, job_id: str, message: Message, view: FollowView) -> Exit | None:
    """A state change into paused / awaiting_decision ends the follow if the job is *still* there
    (the replay of an old pause must not)."""
    if message.event != "state_change" or message.json().get("to_state") not in WAITING_STATES:
        return None
    status = client.get_job(job_id)
    if status.get("state") not in WAITING_STATES:
        return None
    view.waiting(status)
    return JOB_STATE_EXITS[status["state"]]


class FollowView:
    """What the user sees: a bar (terminal) or lines (log), or JSON lines."""

    def __init__(
        self, status: Mapping[str, Any], *, as_json: bool, progress: bool, out: TextIO | None = None
    ) -> None:
        self.job_id = str(status["id"])
        self.name = visible(str(status.get("name", "")))
        self.epochs = int(status.get("epochs") or 0)
        self.stage = int(status.get("stage") or 1)
        self.as_json = as_json
        self.out = out or sys.stdout
        self.bar: tqdm[Any] | None = None
        if progress and not as_json:
            from tqdm import tqdm

            self.bar = tqdm(
                total=self.epochs or None,
                unit="epoch",
                desc=f"{self.name} s{self.stage}",
                file=sys.stderr,
                leave=True,
            )
        if not as_json:
            self.say(f"following job {self.job_id} ({self.name}): {status.get('state')}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def say(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=self.out)
        else:
            print(line, file=self.out, flush=True)

    def note(self, line: str) -> None:
        print(f"ocec-jobs: {line}", file=sys.stderr, flush=True)  # stderr: --json output stays clean

    # ---- messages ---------------------------------------------------------------------------------
    def show(self, message: Message) -> Exit | None:
        data = message.json()
        if self.as_json:
            print(
                json.dumps({"event": message.event, "id": message.id, "data": data}),
                file=self.out,
                flush=True,
            )
        shown = visible_data(data)  # people's terminals get escapes, not control characters
        if message.event == END:
            return self._end(shown)
        if not self.as_json:
            self._describe(message.event, shown)
        return None

    def _describe(self, kind: str, data: Mapping[str, Any]) -> None:
        if kind == METRIC:
            self._metric(data)
        elif kind == "stage_change":
            self._stage(data)
        elif kind == "state_change":
            attempt = f" (attempt {data.get('attempt')})" if data.get("attempt") else ""
            why = f": {data['reason']}" if data.get("reason") else ""
            self.say(f"state {data.get('from_state') or '-'} -> {data.get('to_state')}{attempt}{why}")
        elif kind == "gate_check":
            ev = data.get("evidence") or {}
            verdict = "passed" if ev.get("passed") else f"not passed ({ev.get('policy')}: {ev.get('action')})"
            self.say(
                f"gate to stage {ev.get('stage', data.get('to_stage'))} before epoch {data.get('epoch')}: "
                f"val F1 {f1(ev.get('f1'))} vs {ev.get('threshold')} {verdict}"
            )
        elif kind not in ("epoch", "created"):
            actor = f" by {data['actor']}" if data.get("actor") and data.get("actor") != "system" else ""
            self.say(f"{kind.replace('_', ' ')}{actor}: {data.get('reason') or '-'}")

    def _metric(self, data: Mapping[str, Any]) -> None:
        epoch, stage = int(data.get("epoch") or 0), int(data.get("stage") or self.stage)
        self.stage = stage
        if self.bar is None:
            self.say(
                f"epoch {epoch}/{self.epochs} stage {stage} | val F1 {f1(data.get('val_f1'))} | "
                f"val loss {f1(data.get('val_loss'))} | train loss {f1(data.get('train_loss'))} | "
                f"{data.get('epoch_seconds') or 0:.1f} s"
            )
            return
        if self.bar.total is not None and epoch > self.bar.total:
            self.bar.total = epoch
        self.bar.set_description(f"{self.name} s{stage}", refresh=False)
        self.bar.set_postfix(f1=f1(data.get("val_f1")), loss=f1(data.get("val_loss")), refresh=False)
        self.bar.n = epoch
        self.bar.refresh()

    def _stage(self, data: Mapping[str, Any]) -> None:
        ev = data.get("evidence") or {}
        trigger = ev.get("trigger") or "-"
        where = f"at epoch {data.get('epoch')} ({trigger})"
        if data.get("from_stage") is None:
            reason = data.get("reason") or trigger
            self.say(f"stage {data.get('to_stage')} from epoch {data.get('epoch')}: {reason}")
            return
        lrs = ", ".join(
            f"{k} {v:.3g}" for k, v in (ev.get("lrs") or {}).items() if isinstance(v, int | float)
        )
        self.say(
            f"stage {data.get('from_stage')} -> {data.get('to_stage')} {where}: {data.get('reason') or '-'}"
            + (f" | lr {lrs}" if lrs else "")
        )

    def _end(self, data: Mapping[str, Any]) -> Exit:
        state = str(data.get("state", ""))
        self.close()
        if not self.as_json:
            print(f"{state}: {data.get('state_reason') or '-'}", file=self.out, flush=True)
        return JOB_STATE_EXITS.get(state, Exit.SERVER_ERROR)

    def waiting(self, status: Mapping[str, Any]) -> None:
        if self.as_json:
            return
        self.close()
        state = status.get("state")
        self.say(f"{state}: {visible(str(status.get('state_reason') or '-'))}")
        if state == "awaiting_decision":
            self.say(f"decide with: ocec-jobs decide {self.job_id} proceed|extend|retry|stop --reason '...'")
        else:
            self.say(f"resume with: ocec-jobs resume {self.job_id}")
