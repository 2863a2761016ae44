"""Mixed: a collaborative phase (failure threshold applies), then a sequential phase that
starts from the merged state."""

from __future__ import annotations

from actorflow.events import AgentRun, State
from actorflow.patterns import collaborative, sequential
from actorflow.patterns.base import PatternContext


async def run(ctx: PatternContext, state: State) -> State:
    try:
        merged = await collaborative.run_phase(
            ctx, state, list(ctx.settings.collaborative_agents), phase="collaborative"
        )
    except Exception:
        for agent in ctx.settings.sequential_agents:
            ctx.record(AgentRun(agent, "skipped", phase="sequential"))
        raise
    return await sequential.run_phase(ctx, merged, list(ctx.settings.sequential_agents), phase="sequential")
