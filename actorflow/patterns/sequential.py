"""Sequential: agents run in list order, each output state the next one's input.

The first unrecovered failure stops the pipeline: the outcome's state carries
`pipeline_failed = True` and `failed_stage = agent`; later stages are recorded as skipped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from actorflow.events import AgentRun, State
from actorflow.exceptions import AgentFailedError
from actorflow.patterns.base import Invocation, ModeSpec, PatternOutcome

if TYPE_CHECKING:
    from actorflow.config.schema import OrchestrationConfig
    from actorflow.mermaid import Diagram


async def run_phase(inv: Invocation, state: State, agents: list[str], phase: str | None = None) -> PatternOutcome:
    for index, agent in enumerate(agents):
        inv.latest = state
        try:
            state = await inv.call(agent, state, phase=phase)
        except AgentFailedError as err:
            failed = state.clone()
            failed.set("pipeline_failed", True)
            failed.set("failed_stage", agent)
            inv.latest = failed
            skip_all(inv, agents[index + 1 :], phase)
            return PatternOutcome(failed, err, [agent])
    inv.latest = state
    return PatternOutcome(state)


def skip_all(inv: Invocation, agents: list[str], phase: str | None) -> None:
    """Record stages that will not run as skipped."""
    for agent in agents:
        inv.record(AgentRun(agent, "skipped", phase=phase))


async def run(inv: Invocation, state: State) -> PatternOutcome:
    return await run_phase(inv, state, list(inv.settings.sequential_agents))


def describe(settings: OrchestrationConfig, enabled: list[str]) -> str:
    return " -> ".join(settings.sequential_agents)


def diagram(d: Diagram) -> None:
    steps = [d.agent(name) for name in d.cfg.orchestration.sequential_agents]
    d.chain([d.event(), *steps, d.result()])


SPEC = ModeSpec("sequential", run, agent_keys=("sequential_agents",), describe=describe, diagram=diagram)
