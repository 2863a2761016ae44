"""Collaborative: every agent runs on the same input, in parallel; their changes merge.

At most `max_concurrency` agents run at once. Each agent contributes what it changed (see
`merge`), applied in list order. A failed agent is marked in meta (`{agent}_failed`,
`{agent}_error`); more failures than `failure_threshold` tolerates fail the phase, with the
surviving agents' merged changes as its partial state.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from actorflow.events import State
from actorflow.exceptions import AgentFailedError, FailureThresholdExceededError
from actorflow.patterns.base import Invocation, ModeSpec, PatternOutcome
from actorflow.patterns.fanout import fan_out
from actorflow.patterns.merge import changes, merge

if TYPE_CHECKING:
    from actorflow.config.schema import OrchestrationConfig
    from actorflow.mermaid import Diagram


async def run_phase(inv: Invocation, state: State, agents: list[str], phase: str | None = None) -> PatternOutcome:
    """Run `agents` in parallel on `state` (which `inv.call` never changes); merge their changes."""
    threshold = inv.settings.failure_threshold
    entries = await fan_out(
        [partial(inv.call, agent, state, phase=phase) for agent in agents],
        max_at_once=inv.settings.max_concurrency,
        expected=AgentFailedError,
    )
    contributions, failed = [], []
    for agent, entry in zip(agents, entries):
        if isinstance(entry, State):
            contributions.append(changes(agent, state, entry))
        else:
            failed.append((agent, entry))
    merged, conflicts = merge(state, contributions)
    if conflicts:
        merged.set_meta("merge_conflicts", ",".join(conflicts))
    for agent, err in failed:
        merged.set_meta(f"{agent}_failed", "true")
        merged.set_meta(f"{agent}_error", err.cause or err.message)
    inv.latest = merged
    names = [agent for agent, _ in failed]
    if failed and len(failed) / len(agents) > threshold:
        error = FailureThresholdExceededError(
            f"{len(failed)} of {len(agents)} collaborative agents failed "
            f"({', '.join(names)}), more than failure_threshold = {threshold} tolerates"
        )
        return PatternOutcome(merged, error, names)
    return PatternOutcome(merged, None, names)


async def run(inv: Invocation, state: State) -> PatternOutcome:
    return await run_phase(inv, state, SPEC.agents(inv.settings, inv.enabled_agents))


def describe(settings: OrchestrationConfig, enabled: list[str]) -> str:
    return " | ".join(SPEC.agents(settings, enabled)) + "  (in parallel, changes merged in this order)"


def diagram(d: Diagram) -> None:
    merge_node = d.fan_out_in(d.event(), SPEC.agents(d.cfg.orchestration, d.cfg.enabled_agents()), "agent")
    d.edge(merge_node, d.result())


SPEC = ModeSpec(
    "collaborative", run, agent_keys=("collaborative_agents",), describe=describe, diagram=diagram,
    empty_means_all=True,
)
