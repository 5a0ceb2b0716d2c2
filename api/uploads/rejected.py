"""The one error of the upload checks: why a file is refused, and the 422 error ``type`` naming it."""

from __future__ import annotations


class RejectedError(ValueError):
    """The uploaded file is not acceptable; ``kind`` becomes ``errors[0].type`` of the 422 answer."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
