"""Measuring: latency samples, closed-loop throughput, percentiles, process memory."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

__all__ = ["latencies", "throughput", "percentile", "rss_mb"]

Call = Callable[[], Awaitable[object]]


async def latencies(calls: dict[str, Call], samples: int, warmup: int) -> dict[str, list[float]]:
    """`samples` one-at-a-time calls per system, interleaved so that every system sees the
    same moments of a noisy machine. Seconds per call."""
    for _ in range(warmup):
        for call in calls.values():
            await call()
    seen: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(samples):
        for name, call in calls.items():
            started = time.perf_counter()
            await call()
            seen[name].append(time.perf_counter() - started)
    return seen


async def throughput(call: Call, concurrency: int, seconds: float) -> float:
    """Calls per second with `concurrency` calls always in flight (a closed loop).

    New calls start for `seconds`; the ones in flight then finish and count, so a call
    slower than the window still gives a measurement.
    """
    done = 0
    deadline = time.monotonic() + seconds

    async def client() -> None:
        nonlocal done
        while time.monotonic() < deadline:
            await call()
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return done / (time.perf_counter() - started)


def percentile(values: list[float], q: int) -> float:
    """The q-th percentile (1–99), interpolated between the closest samples."""
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def rss_mb(pids: list[int]) -> float | None:
    """Total resident memory of the processes, from /proc (None where /proc is missing)."""
    total_kb = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total_kb += int(line.split()[1])
    return total_kb / 1024
