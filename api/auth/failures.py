"""Failed keys, counted per client address: past ``limit`` failures in ``window`` seconds, a failure
is answered 429 with ``Retry-After`` instead of 401 (docs/security.md).

Only failures count, and a presented key is still checked while the address is limited, so the
right key always works: a shared address (a proxy, a NAT) cannot be locked out by someone else's
typos or a guesser's flood. Counts live in this process (each API process keeps its own).
"""

from __future__ import annotations

import math
import threading
from collections import deque

from api.errors import ApiError, ProblemType

MAX_ADDRESSES = 10_000  # a flood from many addresses must not grow memory without bound


class FailureLimiter:
    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def fail(self, address: str, now: float) -> float | None:
        """Record a failure; the seconds to wait if the address is now over its limit, else ``None``."""
        with self._lock:
            times = self._failures.pop(address, None) or deque()
            while times and times[0] <= now - self.window:
                times.popleft()
            times.append(now)
            self._failures[address] = times  # re-inserted: the dict stays in order of last failure
            if len(self._failures) > MAX_ADDRESSES:
                del self._failures[next(iter(self._failures))]
            if len(times) <= self.limit:
                return None
            return times[-self.limit] + self.window - now  # when only limit - 1 remain


def too_many_failures(address: str, retry_after: float) -> ApiError:
    seconds = max(1, math.ceil(retry_after))
    return ApiError(
        429,
        ProblemType.TOO_MANY_FAILURES,
        f"too many failed keys from {address}: try again in {seconds} s (a valid key is still accepted)",
        "Too many failed keys",
        headers={"Retry-After": str(seconds)},
    )
