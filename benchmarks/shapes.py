"""The five benchmark shapes: which agents run, in what order, for each pattern.

A shape is a list of groups run one after the other; the agents of a group run at once.
actorflow gets the same shape as an orchestration config, the raw-Ray supervisor walks the
groups, and the LangGraph baseline builds the matching graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Shape", "SHAPES", "MODES", "LOOP_ITERATIONS"]

LOOP_ITERATIONS = 10


@dataclass(frozen=True, slots=True)
class Shape:
    mode: str
    parallel: tuple[str, ...] = ()
    """Agents of the fan-out phase (collaborative, mixed)."""
    serial: tuple[str, ...] = ()
    """Agents run one after the other (route, sequential, mixed; loop: the loop agent)."""
    iterations: int = 1
    """How many times `serial` runs (loop)."""

    @property
    def agents(self) -> tuple[str, ...]:
        return self.parallel + self.serial

    @property
    def entry(self) -> str:
        return self.agents[0]

    def groups(self) -> list[tuple[str, ...]]:
        """The agents in execution order: a group's agents run at once."""
        groups = [self.parallel] if self.parallel else []
        return groups + [(agent,) for agent in self.serial] * self.iterations

    def orchestration(self) -> dict[str, Any]:
        """The `[orchestration]` table that makes actorflow run this shape."""
        table: dict[str, Any] = {"mode": self.mode, "timeout_seconds": 300}
        if self.parallel:
            table["collaborative_agents"] = list(self.parallel)
        if self.mode in ("sequential", "mixed"):
            table["sequential_agents"] = list(self.serial)
        if self.mode == "loop":
            table["loop_agent"], table["max_iterations"] = self.serial[0], self.iterations
        return table


SHAPES: dict[str, Shape] = {
    "route": Shape("route", serial=("a0",)),
    "collaborative": Shape("collaborative", parallel=("a0", "a1", "a2", "a3")),
    "sequential": Shape("sequential", serial=("a0", "a1", "a2", "a3")),
    "loop": Shape("loop", serial=("a0",), iterations=LOOP_ITERATIONS),
    "mixed": Shape("mixed", parallel=("a0", "a1", "a2"), serial=("a3", "a4", "a5")),
}
MODES = tuple(SHAPES)
