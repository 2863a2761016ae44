"""Loop: one agent runs repeatedly, output feeding the next iteration.

Stops when the output has a truthy `loop_complete` (or `loop_completed`), or after
`max_iterations` runs. A failure stops the loop.
"""

from __future__ import annotations

from actorflow.events import State
from actorflow.exceptions import AgentFailedError
from actorflow.patterns.base import PatternContext

COMPLETION_KEYS = ("loop_complete", "loop_completed")


async def run(ctx: PatternContext, state: State) -> State:
    agent = ctx.settings.loop_agent
    ctx.iterations, ctx.state = 0, state
    for iteration in range(1, ctx.settings.max_iterations + 1):
        try:
            state = await ctx.run_agent(agent, state, iteration=iteration)
        except AgentFailedError:
            ctx.failed_agents.append(agent)
            raise
        finally:
            ctx.iterations = iteration
        ctx.state = state
        if any(state.get(key) for key in COMPLETION_KEYS):
            ctx.completion_reason = "loop_complete"
            return state
    ctx.completion_reason = "max_iterations"
    return state
