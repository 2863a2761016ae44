"""The seam between patterns and the runtime, and what a pattern is.

A pattern is `async def run(inv: Invocation, state: State) -> PatternOutcome`. It decides which
agents run, in what order and on which state, and asks the runtime to run one agent with
`await inv.call(name, state, ...)`. Everything else — hooks around the run, retries, the
circuit breaker, timeouts, recording `AgentRun`s, Ray itself — is behind that call, so the
patterns never touch Ray or the supervisor.

Each pattern module also declares its `ModeSpec`: the orchestration keys that name its agents,
its entry agent, a one-line description of its wiring and its Mermaid diagram. Config
validation, the supervisor's pre-flight check, the CLI and the diagrams all read the spec, so
adding a pattern touches one module (and the registry in `patterns/__init__`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from actorflow.events import AgentRun, Event, State
from actorflow.exceptions import DispatchError

if TYPE_CHECKING:
    from actorflow.config.schema import OrchestrationConfig
    from actorflow.interrupts import Interrupt
    from actorflow.mermaid import Diagram

__all__ = ["Invocation", "PatternOutcome", "Pattern", "ModeSpec"]


class Invocation(Protocol):
    """One dispatch as a pattern sees it."""

    event: Event
    """The event being dispatched."""
    settings: OrchestrationConfig
    """The orchestration settings in force (file, environment layer and overrides)."""
    enabled_agents: list[str]
    """Registered, enabled agents in registration order (collaborative's default list)."""
    latest: State
    """The latest state worth reporting: what a failed or timed-out dispatch returns."""

    async def call(
        self, agent: str, state: State, *, phase: str | None = None, iteration: int | None = None
    ) -> State:
        """Run `agent` on `state` and return its output state.

        Raises `AgentFailedError` (or a subclass) when the run failed for good; a failure an
        AGENT_ERROR callback recovered returns the recovered state instead. Cancelling the
        awaiting task cancels the agent's call (its AgentRun says "cancelled").
        """
        ...

    def record(self, run: AgentRun) -> None:
        """Record a run the pattern itself decides (e.g. a "skipped" stage)."""
        ...

    def dismiss(self, interrupt: Interrupt, reason: str) -> None:
        """Drop an interrupt the pattern does not stop for (a satisfied join): the runs it left
        "interrupted" are recorded as "cancelled" with `reason`."""
        ...


@dataclass(slots=True)
class PatternOutcome:
    """How a pattern ended: its final (or partial) state, and the failure if it failed."""

    state: State
    """The final state; the partial state when `error` is set."""
    error: DispatchError | None = None
    """Why the pattern failed, or None."""
    failed_agents: list[str] = field(default_factory=list)
    """Agents whose failure stood (not recovered by an AGENT_ERROR callback)."""
    iterations: int | None = None
    """Loop: how many runs happened."""
    completion_reason: str | None = None
    """Loop: why it stopped."""


Pattern = Callable[["Invocation", State], Awaitable[PatternOutcome]]


@dataclass(frozen=True, slots=True)
class ModeSpec:
    """Everything actorflow knows about one orchestration mode, in one place."""

    name: str
    """The mode's name in `[orchestration] mode`."""
    run: Pattern
    """Runs the pattern for one dispatch."""
    agent_keys: tuple[str, ...]
    """`[orchestration]` keys naming the agents the mode runs, in running order."""
    describe: Callable[[OrchestrationConfig, list[str]], str]
    """One line on the wiring, from the settings and the enabled agents (`actorflow validate`)."""
    diagram: Callable[[Diagram], None]
    """Draws the mode's flowchart (`actorflow visualize`)."""
    empty_means_all: bool = False
    """An empty agent list means "every enabled agent" (collaborative) instead of an error."""
    targets: Callable[[Event], list[str]] | None = None
    """The agents an event reaches when the event, not the settings, decides (route)."""

    def agents(self, settings: OrchestrationConfig, enabled: list[str] | None = None) -> list[str]:
        """The agents the mode runs, in order, each once; `enabled` fills an empty list where allowed."""
        names: list[str] = []
        for key in self.agent_keys:
            value = getattr(settings, key)
            names += [value] if isinstance(value, str) else list(value or [])
        if not names and self.empty_means_all:
            names = list(enabled or [])
        return list(dict.fromkeys(names))

    def reached(self, event: Event, settings: OrchestrationConfig, enabled: list[str]) -> list[str]:
        """Every agent a dispatch of `event` may reach (each must be registered before it starts)."""
        if self.targets is not None:
            return self.targets(event)
        return list(dict.fromkeys([event.target, *self.agents(settings, enabled)]))

    def entry(self, settings: OrchestrationConfig, enabled: list[str]) -> str | None:
        """The agent an event enters by when none is named: the first the mode runs."""
        agents = self.agents(settings, enabled) or enabled
        return agents[0] if agents else None

    def missing(self, settings: OrchestrationConfig) -> list[tuple[str, str]]:
        """(key, problem) for each agent key the mode needs but the settings leave empty."""
        if self.empty_means_all:
            return []
        problems = []
        for key in self.agent_keys:
            if not getattr(settings, key):
                what = "an agent name" if key == "loop_agent" else "a non-empty list of agents"
                problems.append((key, f'mode "{self.name}" needs {what}'))
        return problems
