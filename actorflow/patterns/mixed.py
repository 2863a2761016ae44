"""Mixed: a collaborative phase (failure threshold applies), then a sequential phase that
starts from the merged state."""

from __future__ import annotations

from typing import TYPE_CHECKING

from actorflow.events import State
from actorflow.patterns import collaborative, sequential
from actorflow.patterns.base import Invocation, ModeSpec, PatternOutcome

if TYPE_CHECKING:
    from actorflow.config.schema import OrchestrationConfig
    from actorflow.mermaid import Diagram


async def run(inv: Invocation, state: State) -> PatternOutcome:
    stages = list(inv.settings.sequential_agents)
    merged = await collaborative.run_phase(inv, state, list(inv.settings.collaborative_agents), phase="collaborative")
    if merged.error is not None:
        sequential.skip_all(inv, stages, "sequential")
        return merged
    outcome = await sequential.run_phase(inv, merged.state, stages, phase="sequential")
    outcome.failed_agents[:0] = merged.failed_agents
    return outcome


def describe(settings: OrchestrationConfig, enabled: list[str]) -> str:
    return f"[{' | '.join(settings.collaborative_agents)}] -> " + " -> ".join(settings.sequential_agents)


def diagram(d: Diagram) -> None:
    orch = d.cfg.orchestration
    event = d.event()
    d.subgraph("collaborative_phase", "collaborative phase")
    merge_node = d.fan_out_in(event, orch.collaborative_agents, "collab")
    d.end()
    d.subgraph("sequential_phase", "sequential phase")
    steps = [d.agent(name, "seq") for name in orch.sequential_agents]
    d.end()
    d.chain([merge_node, *steps, d.result()])


SPEC = ModeSpec(
    "mixed", run, agent_keys=("collaborative_agents", "sequential_agents"), describe=describe, diagram=diagram
)
