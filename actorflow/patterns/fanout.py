"""Bounded, structured fan-out: run jobs at most N at once, and own every task started.

Every task started here ends before `fan_out` returns or raises — finished, failed or
cancelled (anyio's rule: no orphans). An unexpected exception, or the caller's cancellation,
cancels the jobs still running and propagates once they have ended. An early-stop predicate
(`until`) ends the fan-out as soon as the entries so far satisfy it: jobs still running are
cancelled (entry `CANCELLED`), jobs not started never start (entry `NOT_STARTED`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

__all__ = ["fan_out", "PENDING", "CANCELLED", "NOT_STARTED"]


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


PENDING: Any = _Marker("PENDING")
"""Entry of a job that has not finished (what `until` sees)."""
CANCELLED: Any = _Marker("CANCELLED")
"""Entry of a job cancelled by the early stop."""
NOT_STARTED: Any = _Marker("NOT_STARTED")
"""Entry of a job the early stop kept from starting."""


async def fan_out(
    jobs: Sequence[Callable[[], Awaitable[Any]]],
    *,
    max_at_once: int,
    expected: type[BaseException] | tuple[type[BaseException], ...] = (),
    until: Callable[[list[Any]], bool] | None = None,
) -> list[Any]:
    """Run `jobs` in list order, at most `max_at_once` at a time; return one entry per job:
    its value, or the `expected` exception it raised (or a marker after an early stop).

    `until(entries)` is asked after each job ends (unfinished entries are `PENDING`); True
    stops the fan-out there."""
    entries: list[Any] = [PENDING] * len(jobs)
    running: dict[asyncio.Task, int] = {}
    next_job = 0
    stopped = False
    try:
        while (next_job < len(jobs) or running) and not stopped:
            while next_job < len(jobs) and len(running) < max(1, max_at_once):
                running[asyncio.ensure_future(jobs[next_job]())] = next_job
                next_job += 1
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in sorted(done, key=running.__getitem__):
                index = running.pop(task)
                error = task.exception()
                if error is not None and not isinstance(error, expected):
                    raise error
                entries[index] = task.result() if error is None else error
            stopped = until is not None and until(entries)
    finally:
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
    if stopped:
        for task, index in running.items():
            if task.cancelled():
                entries[index] = CANCELLED
            else:  # it ended before the cancellation reached it
                error = task.exception()
                entries[index] = task.result() if error is None else error if isinstance(error, expected) else CANCELLED
        for index in range(next_job, len(jobs)):
            entries[index] = NOT_STARTED
    return entries
