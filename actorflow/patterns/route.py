"""Route: one agent handles the event — `metadata["route"]` if present, else the target."""

from __future__ import annotations

from typing import TYPE_CHECKING

from actorflow.events import Event, State
from actorflow.exceptions import AgentFailedError, DispatchError
from actorflow.patterns.base import Invocation, ModeSpec, PatternOutcome

if TYPE_CHECKING:
    from actorflow.config.schema import OrchestrationConfig
    from actorflow.mermaid import Diagram


def target(event: Event) -> str:
    """The agent the event goes to."""
    return event.metadata.get("route") or event.target


async def run(inv: Invocation, state: State) -> PatternOutcome:
    """Route chaining: an output that changes meta `route` goes to that agent next, at most
    `max_hops` agent runs in all."""
    agent, chain = target(inv.event), []
    limit = inv.settings.max_hops
    while True:
        chain.append(agent)
        before = state.get_meta("route")
        try:
            state = await inv.call(agent, state)
        except AgentFailedError as err:
            return PatternOutcome(state, err, [agent])
        inv.latest = state
        after = state.get_meta("route")
        if not after or after == before:
            return PatternOutcome(state)
        if len(chain) >= limit:
            path = " → ".join([*chain, after, "…"])
            error = DispatchError(f"route chain longer than max_hops = {limit}: {path}")
            return PatternOutcome(state, error)
        agent = after


def describe(settings: OrchestrationConfig, enabled: list[str]) -> str:
    return "each event goes to its target (or metadata route) agent"


def diagram(d: Diagram) -> None:
    event = d.event()
    router = d.node("router", "Event router<br/>metadata.route or target", "rhombus")
    d.edge(event, router)
    names = d.cfg.enabled_agents()
    hops = d.cfg.orchestration.max_hops
    for index, name in enumerate(names):
        agent = d.agent(name)
        d.edge(router, agent)
        # route chaining: an output that changes meta route goes back to the router
        d.edge(agent, router, f"route changed (max_hops = {hops})" if index == 0 else "", dotted=True)
    if not names:
        d.edge(router, d.node("registered", "agents registered in code"), dotted=True)


SPEC = ModeSpec(
    "route", run, agent_keys=(), describe=describe, diagram=diagram, empty_means_all=True,
    targets=lambda event: [target(event)],
)
