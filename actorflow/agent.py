"""The `Agent` base class: an agent with private state that lives as long as its actor."""

from __future__ import annotations

from typing import Any

from actorflow.events import AgentResult, Event, State

__all__ = ["Agent"]


class Agent:
    """Subclass and override `run`; optionally `on_start` and `on_stop`.

    The runtime instantiates the class (no arguments) inside the agent's own actor process, so
    its attributes are that actor's private state: they persist across dispatches for the
    actor's lifetime (e.g. a per-session memory) and are rebuilt by the constructor after a
    restart. `name` is set to the agent's registered name before `on_start` runs.
    Each of `run`, `on_start` and `on_stop` may be sync or `async`.
    """

    name: str = ""

    def run(self, event: Event, state: State) -> State | AgentResult | dict[str, Any] | None:
        raise NotImplementedError(f"{type(self).__name__} must implement run(event, state)")

    def on_start(self) -> None:
        """Called once in the actor before the first message."""

    def on_stop(self) -> None:
        """Called once when the runner stops the agent."""
