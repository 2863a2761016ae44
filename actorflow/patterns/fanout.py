"""Bounded, structured fan-out: run jobs at most N at once, and own every task started.

Every task started here ends before `fan_out` returns or raises — finished, failed or
cancelled (anyio's rule: no orphans). An unexpected exception, or the caller's cancellation,
cancels the jobs still running and propagates once they have ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

__all__ = ["fan_out"]


async def fan_out(
    jobs: Sequence[Callable[[], Awaitable[Any]]],
    *,
    max_at_once: int,
    expected: type[BaseException] | tuple[type[BaseException], ...] = (),
) -> list[Any]:
    """Run `jobs` in list order, at most `max_at_once` at a time; return one entry per job:
    its value, or the `expected` exception it raised."""
    entries: list[Any] = [None] * len(jobs)
    running: dict[asyncio.Task, int] = {}
    next_job = 0
    try:
        while next_job < len(jobs) or running:
            while next_job < len(jobs) and len(running) < max(1, max_at_once):
                running[asyncio.ensure_future(jobs[next_job]())] = next_job
                next_job += 1
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                index = running.pop(task)
                error = task.exception()
                if error is not None and not isinstance(error, expected):
                    raise error
                entries[index] = task.result() if error is None else error
    finally:
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
    return entries
