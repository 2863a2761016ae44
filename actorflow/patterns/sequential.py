"""Sequential: agents run in list order, each output state the next one's input.

The first unrecovered failure stops the pipeline: the error's result state carries
`pipeline_failed = True` and `failed_stage = agent`; later stages are recorded as skipped.
"""

from __future__ import annotations

from actorflow.events import AgentRun, State
from actorflow.exceptions import AgentFailedError
from actorflow.patterns.base import PatternContext


async def run_phase(ctx: PatternContext, state: State, agents: list[str], phase: str | None = None) -> State:
    for index, agent in enumerate(agents):
        ctx.state = state
        try:
            state = await ctx.run_agent(agent, state, phase=phase)
        except AgentFailedError:
            failed = state.clone()
            failed.set("pipeline_failed", True)
            failed.set("failed_stage", agent)
            ctx.state = failed
            ctx.failed_agents.append(agent)
            for skipped in agents[index + 1 :]:
                ctx.record(AgentRun(skipped, "skipped", phase=phase))
            raise
    ctx.state = state
    return state


async def run(ctx: PatternContext, state: State) -> State:
    return await run_phase(ctx, state, list(ctx.settings.sequential_agents))
