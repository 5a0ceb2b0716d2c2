"""Repository functions: keyword-only, each takes a ``Session`` and runs inside the caller's transaction.

Use a write transaction (``jobstore.db.write_transaction``) for anything that writes. Worker-side
writes are fenced by attempt (``FencedOutError``). One module per noun; everything public is
re-exported here: ``from jobstore import repo; repo.create_job(session, create=...)``.
"""

from jobstore.repo.checkpoints import (
    Selector,
    find_checkpoint,
    list_checkpoints,
    parse_selector,
    record_checkpoint,
    require_checkpoint,
)
from jobstore.repo.commands import (
    CancelResult,
    CommandRequest,
    CommandView,
    list_commands,
    mark_delivered,
    mark_result,
    open_commands,
    pending_commands,
    request_cancel,
    request_command,
    settle_open_commands,
)
from jobstore.repo.decisions import Decision, DecisionAction, decide
from jobstore.repo.events import FeedItem, append_event, feed, list_events, record_note
from jobstore.repo.jobs import (
    CreateResult,
    JobPage,
    create_job,
    decode_cursor,
    encode_cursor,
    fork_rows,
    get_job,
    list_jobs,
    queue_position,
    request_hash,
)
from jobstore.repo.leases import (
    Claim,
    Finish,
    Heartbeat,
    Restore,
    claim,
    finish_attempt,
    heartbeat,
    record_restore,
)
from jobstore.repo.metrics import (
    chart_metrics,
    list_metrics,
    recent_epoch_seconds,
    record_epoch,
    supersede_after,
)
from jobstore.repo.notifications import list_deliveries
from jobstore.repo.races import (
    RaceChange,
    RaceCommand,
    RaceState,
    command_race,
    create_race,
    get_race,
    race_view,
)
from jobstore.repo.resume import (
    automatic_resume_point,
    fork_job,
    request_resume,
    resume_point,
)
from jobstore.repo.stages import record_gate_check, record_stage_change
from jobstore.repo.transitions import mark_dispatched, requeue, transition
from jobstore.repo.workers import (
    Presence,
    beat_worker,
    mark_stopped,
    presence,
    record_supervisor_note,
    worker_live,
)

__all__ = [
    "CancelResult",
    "Claim",
    "CommandRequest",
    "CommandView",
    "CreateResult",
    "Decision",
    "DecisionAction",
    "FeedItem",
    "Finish",
    "Heartbeat",
    "JobPage",
    "Presence",
    "RaceChange",
    "RaceCommand",
    "RaceState",
    "Restore",
    "Selector",
    "append_event",
    "automatic_resume_point",
    "beat_worker",
    "chart_metrics",
    "claim",
    "command_race",
    "create_job",
    "create_race",
    "decide",
    "decode_cursor",
    "encode_cursor",
    "feed",
    "find_checkpoint",
    "finish_attempt",
    "fork_job",
    "fork_rows",
    "get_job",
    "get_race",
    "heartbeat",
    "list_checkpoints",
    "list_commands",
    "list_deliveries",
    "list_events",
    "list_jobs",
    "list_metrics",
    "mark_delivered",
    "mark_dispatched",
    "mark_result",
    "mark_stopped",
    "open_commands",
    "parse_selector",
    "pending_commands",
    "presence",
    "queue_position",
    "race_view",
    "recent_epoch_seconds",
    "record_checkpoint",
    "record_epoch",
    "record_gate_check",
    "record_note",
    "record_restore",
    "record_stage_change",
    "record_supervisor_note",
    "request_cancel",
    "request_command",
    "request_hash",
    "request_resume",
    "requeue",
    "require_checkpoint",
    "resume_point",
    "settle_open_commands",
    "supersede_after",
    "transition",
    "worker_live",
]
