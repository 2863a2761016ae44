"""Collaborative: every agent runs on the same input, in parallel; their changes merge.

At most `max_concurrency` agents run at once. Each agent contributes what it changed (see
`merge`), applied in list order. A failed agent is marked in meta (`{agent}_failed`,
`{agent}_error`); more failures than `failure_threshold` tolerates fail the phase, with the
surviving agents' merged changes as its partial state. An agent that raises `Interrupt` does
not stop the others: they run to their end (their finished runs are kept as steps, replayed
on resume), then the phase raises the interrupt (the first in list order) — unless a join
(first/quorum) was satisfied: then the interrupted agent is cancelled like the join's others.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from actorflow.events import AgentRun, State
from actorflow.exceptions import AgentFailedError, FailureThresholdExceededError, MergeConflictError
from actorflow.interrupts import Interrupt
from actorflow.patterns.base import Invocation, ModeSpec, PatternOutcome
from actorflow.patterns.fanout import CANCELLED, NOT_STARTED, PENDING, fan_out
from actorflow.patterns.merge import changes, merge
from actorflow.patterns.reducers import resolvers

if TYPE_CHECKING:
    from actorflow.config.schema import OrchestrationConfig
    from actorflow.mermaid import Diagram


async def run_phase(inv: Invocation, state: State, agents: list[str], phase: str | None = None) -> PatternOutcome:
    """Run `agents` in parallel on `state` (which `inv.call` never changes); merge their changes.

    `join` = first/quorum ends the phase at N successes: the others are cancelled."""
    settings = inv.settings
    threshold = settings.failure_threshold
    needed = {"all": None, "first": 1, "quorum": settings.quorum}[settings.join]
    entries = await fan_out(
        [partial(inv.call, agent, state, phase=phase) for agent in agents],
        max_at_once=settings.max_concurrency,
        expected=(AgentFailedError, Interrupt),
        until=None if needed is None else partial(_joined, needed, len(agents)),
    )
    joined = needed is not None and sum(isinstance(entry, State) for entry in entries) >= needed
    for entry in entries:
        if isinstance(entry, Interrupt) and not joined:
            raise entry
    contributions, failed = [], []
    for agent, entry in zip(agents, entries):
        if isinstance(entry, State):
            contributions.append(changes(agent, state, entry))
        elif isinstance(entry, Interrupt):
            inv.dismiss(entry, f"cancelled: join = {settings.join!r} was satisfied; its interrupt "
                        f"({entry.reason!r}) was dropped")
        elif entry is NOT_STARTED:
            inv.record(AgentRun(agent, "cancelled", 0.0, f"cancelled: join = {settings.join!r} was satisfied "
                                "before it started", 1, None, phase))
        elif entry is not CANCELLED:
            failed.append((agent, entry))
    resolve, resolve_meta = resolvers(settings.merge)
    try:
        merged, conflicts = merge(state, contributions, resolve, resolve_meta)
    except MergeConflictError as err:
        inv.latest, _ = merge(state, contributions)  # the partial state: the default merge
        return PatternOutcome(inv.latest, err, [])
    if conflicts:
        merged.set_meta("merge_conflicts", ",".join(conflicts))
    for agent, err in failed:
        merged.set_meta(f"{agent}_failed", "true")
        merged.set_meta(f"{agent}_error", err.cause or err.message)
    inv.latest = merged
    names = [agent for agent, _ in failed]
    if needed is not None:
        succeeded = len(contributions)
        if succeeded < min(needed, len(agents)):
            error = FailureThresholdExceededError(
                f"join = {settings.join!r} needs {needed} successful collaborative agents, but only "
                f"{succeeded} of {len(agents)} can succeed ({', '.join(names)} failed)"
            )
            return PatternOutcome(merged, error, names)
        return PatternOutcome(merged, None, names)
    if failed and len(failed) / len(agents) > threshold:
        error = FailureThresholdExceededError(
            f"{len(failed)} of {len(agents)} collaborative agents failed "
            f"({', '.join(names)}), more than failure_threshold = {threshold} tolerates"
        )
        return PatternOutcome(merged, error, names)
    return PatternOutcome(merged, None, names)


def _joined(needed: int, total: int, entries: list) -> bool:
    """The join is decided: `needed` successes, or too many failures for them."""
    succeeded = sum(isinstance(entry, State) for entry in entries)
    failed = sum(entry is not PENDING and not isinstance(entry, (State, Interrupt)) for entry in entries)
    return succeeded >= needed or failed > total - needed


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
