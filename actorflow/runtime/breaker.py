"""A circuit breaker per agent, held by the supervisor."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from actorflow.config import CircuitBreakerConfig

__all__ = ["CircuitBreaker", "CircuitState"]

CircuitState = Literal["closed", "open", "half_open"]


@dataclass(slots=True)
class CircuitBreaker:
    """closed → open after `failure_threshold` consecutive failures → after `reset_timeout`
    half-open, letting `half_open_max_calls` trial calls through at a time → closed after
    `half_open_successes` successes; a failed trial reopens it.
    """

    failure_threshold: int = 5
    reset_timeout: float = 30.0
    half_open_successes: int = 3
    half_open_max_calls: int = 1
    clock: Callable[[], float] = time.monotonic
    _state: CircuitState = "closed"
    _failures: int = 0
    _successes: int = 0
    _trials: int = 0
    _opened_at: float = 0.0

    @classmethod
    def from_config(cls, config: CircuitBreakerConfig) -> CircuitBreaker:
        return cls(
            failure_threshold=config.failure_threshold,
            reset_timeout=config.reset_timeout_seconds,
            half_open_successes=config.half_open_successes,
            half_open_max_calls=config.half_open_max_calls,
        )

    @property
    def state(self) -> CircuitState:
        if self._state == "open" and self.clock() - self._opened_at >= self.reset_timeout:
            self._state, self._successes, self._trials = "half_open", 0, 0
        return self._state

    def retry_in(self) -> float:
        """Seconds until an open breaker lets a trial call through (0 when not open)."""
        if self.state != "open":
            return 0.0
        return max(0.0, self.reset_timeout - (self.clock() - self._opened_at))

    def try_acquire(self) -> bool:
        """May a call go through now? In half-open this takes one of the trial slots."""
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and self._trials < self.half_open_max_calls:
            self._trials += 1
            return True
        return False

    def record_success(self) -> None:
        if self._state == "half_open":
            self._trials = max(0, self._trials - 1)
            self._successes += 1
            if self._successes >= self.half_open_successes:
                self._state, self._failures = "closed", 0
        else:
            self._failures = 0

    def record_failure(self) -> None:
        if self._state == "half_open":
            self._open()
            return
        self._failures += 1
        if self._state == "closed" and self._failures >= self.failure_threshold:
            self._open()

    def release(self) -> None:
        """A trial call ended without a verdict (cancelled): give its slot back."""
        if self._state == "half_open":
            self._trials = max(0, self._trials - 1)

    def settle(self, verdict: bool | None) -> None:
        """End a call `try_acquire` let through: success, failure, or no verdict (slot back)."""
        if verdict is None:
            self.release()
        elif verdict:
            self.record_success()
        else:
            self.record_failure()

    def _open(self) -> None:
        self._state, self._opened_at = "open", self.clock()
        self._failures = self._successes = self._trials = 0
