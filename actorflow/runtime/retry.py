"""Retry policy: which failures are retried, and how long to wait before each retry."""

from __future__ import annotations

import random
from dataclasses import dataclass

from actorflow.config import OrchestrationConfig

__all__ = ["RetryPolicy"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with optional full jitter, capped at `max_delay`."""

    max_retries: int = 3
    """Retries after the first attempt (so at most `max_retries + 1` attempts)."""
    initial_delay: float = 1.0
    """Delay before the first retry, in seconds."""
    max_delay: float = 30.0
    """Cap on any one delay, in seconds."""
    backoff_factor: float = 2.0
    """Each retry waits `backoff_factor` times longer than the one before."""
    jitter: bool = True
    """Draw each delay uniformly from [delay/2, delay] so retries from many callers spread out."""
    retryable_errors: frozenset[str] = frozenset()
    """Exception class names (matched against the whole MRO) that are worth retrying."""

    @classmethod
    def from_config(cls, orchestration: OrchestrationConfig) -> RetryPolicy:
        retry = orchestration.retry
        return cls(
            max_retries=orchestration.max_retries,
            initial_delay=retry.initial_delay_seconds,
            max_delay=retry.max_delay_seconds,
            backoff_factor=retry.backoff_factor,
            jitter=retry.jitter,
            retryable_errors=frozenset(retry.retryable_errors),
        )

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (from 1)."""
        base = min(self.max_delay, self.initial_delay * self.backoff_factor ** (attempt - 1))
        if self.jitter and base > 0:
            return (rng or random).uniform(base / 2, base)
        return base

    def retries_error(self, type_names: tuple[str, ...]) -> bool:
        """True when an exception with this MRO (class names) is retryable."""
        return any(name in self.retryable_errors for name in type_names)
