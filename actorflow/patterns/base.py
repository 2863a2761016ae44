"""The seam between patterns and the runtime.

A pattern is `async def run(ctx: PatternContext, state: State) -> State`. It decides which
agents run, in what order and on which state, and asks the runtime to run one agent with
`await ctx.run_agent(name, state, ...)`. Everything else — hooks around the run, retries, the
circuit breaker, timeouts, recording `AgentRun`s, Ray itself — is behind that call, so the
patterns never touch Ray.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from actorflow.config import OrchestrationConfig
from actorflow.events import AgentRun, Event, State

__all__ = ["AgentCaller", "PatternContext", "Pattern"]


class AgentCaller(Protocol):
    async def __call__(
        self, agent: str, state: State, *, phase: str | None = None, iteration: int | None = None
    ) -> State:
        """Run `agent` on `state` and return its output state.

        Raises `AgentFailedError` (or a subclass) when the run failed for good; a failure an
        AGENT_ERROR callback recovered returns the recovered state instead.
        """
        ...


@dataclass(slots=True)
class PatternContext:
    """What a pattern gets for one dispatch, and where it leaves its bookkeeping."""

    event: Event
    """The event being dispatched."""
    settings: OrchestrationConfig
    """The orchestration settings in force (file, environment layer and overrides)."""
    run_agent: AgentCaller
    """Runs one agent (see AgentCaller)."""
    enabled_agents: list[str]
    """Registered, enabled agents in registration order (collaborative's default list)."""
    record: Callable[[AgentRun], None]
    """Records an AgentRun the pattern itself decides (e.g. a "skipped" stage)."""
    state: State | None = None
    """The latest state worth reporting: the partial result if the dispatch fails."""
    failed_agents: list[str] = field(default_factory=list)
    """Agents whose failure stood."""
    iterations: int | None = None
    """Loop: how many runs happened."""
    completion_reason: str | None = None
    """Loop: why it stopped."""


Pattern = Callable[[PatternContext, State], Awaitable[State]]
