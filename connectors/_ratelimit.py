"""Client-side request budgets, so a connector stays under an API's limits instead of hitting them.

The clock and sleep are injected so tests never really wait.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from okrsync.errors import RateLimitedError


class RateLimiter:
    """At most `limit` requests per `period` seconds, and none while the server says 0 remain.

    A wait up to `max_sleep` seconds is slept here; a longer one (an exhausted hourly quota)
    raises RateLimitedError so the one retry policy decides whether to wait or give up.
    """

    def __init__(
        self,
        name: str,
        limit: int | None,
        period: float = 60.0,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        max_sleep: float = 60.0,
    ) -> None:
        self.name = name
        self.limit = limit
        self.period = period
        self.clock = clock
        self.sleep = sleep
        self.max_sleep = max_sleep
        self.slept = 0.0
        self._stamps: deque[float] = deque()
        self._remaining: int | None = None
        self._reset_at: float | None = None
        self._lock = threading.Lock()

    def observe(self, remaining: int | None, reset_at: float | None) -> None:
        """Record what the server said is left (`x-ratelimit-remaining`) and when it resets."""
        with self._lock:
            if remaining is not None:
                self._remaining = remaining
            if reset_at is not None:
                self._reset_at = reset_at

    def exhausted_for(self) -> float | None:
        """Seconds until the server's quota resets, if it said none remain; else None."""
        if self._remaining != 0 or self._reset_at is None:
            return None
        return max(0.0, self._reset_at - self.clock())

    def acquire(self) -> None:
        """Wait (or raise) until one more request fits in both budgets, then count it."""
        with self._lock:
            wait = self.exhausted_for()
            if wait is not None:
                if wait > self.max_sleep:
                    raise RateLimitedError(
                        f"{self.name}: rate limit used up; it resets in {wait:.0f}s", wait
                    )
                self._pause(wait)
                self._remaining = None
            now = self.clock()
            if self.limit:
                self._expire(now)
                if len(self._stamps) >= self.limit:
                    self._pause(self._stamps[0] + self.period - now)
                    now = self.clock()
                    self._expire(now)
            self._stamps.append(now)

    def _expire(self, now: float) -> None:
        while self._stamps and self._stamps[0] <= now - self.period:
            self._stamps.popleft()

    def _pause(self, seconds: float) -> None:
        if seconds > 0:
            self.slept += seconds
            self.sleep(seconds)
