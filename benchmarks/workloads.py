"""The three workloads: what every agent does, the same function in all three systems.

An agent is a handler with the actorflow signature `(event, state)` that reads how long to
work from `state["seconds"]` (a `State` in actorflow, a dict in raw Ray and LangGraph) and
returns None (actorflow: "state unchanged"). The raw-Ray and LangGraph baselines call the very
same functions, so nothing but orchestration differs between the systems. `noop` and `io`
share one handler, so one set of actors serves both.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Workload", "WORKLOADS", "UNIT_SECONDS", "burn"]

UNIT_SECONDS = 0.05
"""How long one agent run of `io` waits and of `cpu` computes."""


async def waits(event: Any, state: Any) -> None:
    """Waits like an LLM call would (`io`, measuring concurrency), or returns at once when
    `seconds` is 0 (`noop`, measuring pure orchestration overhead)."""
    seconds = state.get("seconds")
    if seconds:
        await asyncio.sleep(seconds)


def computes(event: Any, state: Any) -> None:
    """Computes in pure Python, a sync handler (`cpu`): measures parallelism across processes."""
    burn(state.get("seconds"))


def burn(seconds: float) -> int:
    """Spin the interpreter for `seconds` of this thread's CPU time (not wall time), so
    sharing a core or the GIL stretches the run as real work would be stretched."""
    end = time.thread_time() + seconds
    n = 0
    while time.thread_time() < end:
        for _ in range(2000):
            n += 1
    return n


@dataclass(frozen=True, slots=True)
class Workload:
    name: str
    handler: Callable[[Any, Any], Any]
    """The agent: `handler(event, state)`, async for noop/io, sync for cpu."""
    seconds: float
    """Length of one agent run (0 for noop); sent in the state as `seconds`."""
    cpu_bound: bool
    """True when runs compete for cores; False when they only wait."""

    @property
    def payload(self) -> dict[str, Any]:
        """The event data (the initial state) of every dispatch."""
        return {"seconds": self.seconds}

    def ideal_ms(self, groups: list[tuple[str, ...]], cores: int) -> float:
        """The lower bound: groups run one after the other, the agents of a group at once.

        Waiting agents overlap completely; computing agents share `cores`.
        """
        total = 0.0
        for group in groups:
            share = max(1.0, len(group) / cores) if self.cpu_bound else 1.0
            total += share * self.seconds
        return total * 1000


WORKLOADS: dict[str, Workload] = {
    "noop": Workload("noop", waits, 0.0, cpu_bound=False),
    "io": Workload("io", waits, UNIT_SECONDS, cpu_bound=False),
    "cpu": Workload("cpu", computes, UNIT_SECONDS, cpu_bound=True),
}
