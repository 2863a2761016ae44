"""An agent's actors: one per replica, calls balanced to the least busy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from actorflow.config import AgentConfig

__all__ = ["AgentPool"]


@dataclass(slots=True)
class AgentPool:
    """The actors behind one agent name, as the supervisor sees them."""

    name: str
    """The agent's name."""
    config: AgentConfig
    """Its [agents.NAME] settings (file plus code overrides)."""
    actors: list[Any]
    """Ray actor handles, one per replica."""
    is_async: bool
    """True for async handlers (cancellable on their event loop); sync ones are killed on timeout."""
    pids: list[int] = field(default_factory=list)
    """Process id of each replica when it was started (for operators and fault tests)."""
    restarting: dict[int, Any] = field(default_factory=dict)
    """Replica index → an asyncio task that finishes when a replica we killed is back."""
    _in_flight: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._in_flight = [0] * len(self.actors)

    def __getstate__(self) -> dict[str, Any]:
        # asyncio tasks stay in the supervisor that made them
        return {name: ({} if name == "restarting" else getattr(self, name)) for name in self.__slots__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)

    def acquire(self) -> int:
        """Index of the replica with the fewest calls in flight (marked busy by one more)."""
        index = min(range(len(self.actors)), key=self._in_flight.__getitem__)
        self._in_flight[index] += 1
        return index

    def release(self, index: int) -> None:
        self._in_flight[index] -= 1

    @property
    def in_flight(self) -> int:
        return sum(self._in_flight)
