"""Field types and base classes the request and response shapes share."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from jobstore.spec import Epochs, StageNumber
from jobstore.text import check_safe

__all__ = ["Epochs", "StageNumber"]  # the spec's own types, re-exported for the control bodies

CHECKPOINT_REF = r"^(last|best|stage:[1-3]|epoch:[0-9]{1,5})$"
CheckpointRef = Annotated[
    str, Field(pattern=CHECKPOINT_REF, description="last | best | stage:N (its entry) | epoch:N")
]
CommandKey = Annotated[str, Field(min_length=1, max_length=255)]
# Cursors (epochs, event seqs) are 32-bit columns: a larger number is a client error, not a
# database overflow (a 500 that schemathesis found).
CURSOR_MAX = 2**31 - 1

# Reasons go into the audit trail and are shown by the CLI and dashboard: no control or bidi
# characters (jobstore.text), so one line stays one line.
Reason = Annotated[str, Field(max_length=2000), AfterValidator(check_safe)]
RequiredReason = Annotated[
    str, Field(min_length=1, max_length=2000, pattern=r"\S"), AfterValidator(check_safe)
]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class _Public(BaseModel):
    model_config = ConfigDict(from_attributes=True)
