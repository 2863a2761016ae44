"""Collaborative: every agent runs on its own copy of the state, in parallel; outputs merge.

At most `max_concurrency` agents run at once. Outputs merge in list order (not finish order;
later entries win a key conflict). A failed agent is marked in meta (`{agent}_failed`,
`{agent}_error`); more failures than `failure_threshold` tolerates fail the dispatch.
"""

from __future__ import annotations

import asyncio

from actorflow.events import State
from actorflow.exceptions import AgentFailedError, FailureThresholdExceededError
from actorflow.patterns.base import PatternContext


async def run_phase(ctx: PatternContext, state: State, agents: list[str], phase: str | None = None) -> State:
    """Run `agents` in parallel on copies of `state`; return the merged state."""
    limit = asyncio.Semaphore(max(1, ctx.settings.max_concurrency))

    async def one(agent: str) -> State | AgentFailedError:
        async with limit:
            try:
                # Each agent gets its own deep copy: the actor call pickles it anyway, and the
                # BEFORE_AGENT_RUN callbacks must not see each other's changes either.
                return await ctx.run_agent(agent, state.clone(), phase=phase)
            except AgentFailedError as err:
                return err

    outcomes = await asyncio.gather(*(one(agent) for agent in agents))
    merged = state.clone()
    failed: list[str] = []
    for agent, outcome in zip(agents, outcomes):
        if isinstance(outcome, AgentFailedError):
            failed.append(agent)
            merged.set_meta(f"{agent}_failed", "true")
            merged.set_meta(f"{agent}_error", outcome.cause or outcome.message)
        else:
            merged.merge(outcome)
    ctx.failed_agents.extend(failed)
    ctx.state = merged
    threshold = ctx.settings.failure_threshold
    if failed and len(failed) / len(agents) > threshold:
        raise FailureThresholdExceededError(
            f"{len(failed)} of {len(agents)} collaborative agents failed "
            f"({', '.join(failed)}), more than failure_threshold = {threshold} tolerates"
        )
    return merged


async def run(ctx: PatternContext, state: State) -> State:
    agents = list(ctx.settings.collaborative_agents) or list(ctx.enabled_agents)
    return await run_phase(ctx, state, agents)
