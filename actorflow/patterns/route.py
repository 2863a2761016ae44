"""Route: one agent handles the event — `metadata["route"]` if present, else the target."""

from __future__ import annotations

from actorflow.events import State
from actorflow.patterns.base import PatternContext


async def run(ctx: PatternContext, state: State) -> State:
    target = ctx.event.metadata.get("route") or ctx.event.target
    ctx.state = await ctx.run_agent(target, state)
    return ctx.state
