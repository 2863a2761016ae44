"""Loop: one agent runs repeatedly, output feeding the next iteration.

Stops when the output has a truthy `loop_complete` (or `loop_completed`), or after
`max_iterations` runs. A failure stops the loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from actorflow.events import State
from actorflow.exceptions import AgentFailedError
from actorflow.patterns.base import Invocation, ModeSpec, PatternOutcome

if TYPE_CHECKING:
    from actorflow.config.schema import OrchestrationConfig
    from actorflow.mermaid import Diagram

COMPLETION_KEYS = ("loop_complete", "loop_completed")


async def run(inv: Invocation, state: State) -> PatternOutcome:
    agent = inv.settings.loop_agent
    for iteration in range(1, inv.settings.max_iterations + 1):
        try:
            state = await inv.call(agent, state, iteration=iteration)
        except AgentFailedError as err:
            return PatternOutcome(state, err, [agent], iterations=iteration)
        inv.latest = state
        if any(state.get(key) for key in COMPLETION_KEYS):
            return PatternOutcome(state, iterations=iteration, completion_reason="loop_complete")
    return PatternOutcome(state, iterations=inv.settings.max_iterations, completion_reason="max_iterations")


def describe(settings: OrchestrationConfig, enabled: list[str]) -> str:
    return f"{settings.loop_agent} repeated until loop_complete, at most {settings.max_iterations} times"


def diagram(d: Diagram) -> None:
    bound = d.cfg.orchestration.max_iterations
    agent = d.agent(d.cfg.orchestration.loop_agent or "")
    check = d.node("check", "loop_complete?", "rhombus")
    result = d.result()
    d.chain([d.event(), agent, check])
    d.edge(check, agent, f"no: repeat until loop_complete / max_iterations = {bound}")
    d.edge(check, result, f"loop_complete or max_iterations = {bound}")


SPEC = ModeSpec("loop", run, agent_keys=("loop_agent",), describe=describe, diagram=diagram)
