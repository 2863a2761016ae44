"""The LangGraph baseline: the same five shapes as LangGraph graphs running in-process.

Parallel branches for the fan-outs, a chain for pipelines, and a cycle with a condition for
the loop. LangGraph is optional (the `bench` extra); without it the baseline is skipped.
"""

from __future__ import annotations

import asyncio
import operator
from collections.abc import Callable
from importlib import metadata
from typing import Annotated, Any, TypedDict

from benchmarks.shapes import Shape

__all__ = ["available", "version", "build"]

try:
    from langgraph.graph import END, START, StateGraph
except ImportError:  # the bench extra is not installed
    StateGraph = None


class _State(TypedDict):
    seconds: float
    runs: Annotated[int, operator.add]


def available() -> bool:
    return StateGraph is not None


def version() -> str | None:
    try:
        return metadata.version("langgraph")
    except metadata.PackageNotFoundError:
        return None


def build(shape: Shape, handler: Callable[..., Any]) -> Any:
    """A compiled graph for `shape` whose nodes call `handler`: `await graph.ainvoke(...)`."""
    graph = StateGraph(_State)
    if shape.mode == "loop":
        agent = shape.serial[0]
        graph.add_node(agent, _node(handler))
        graph.add_edge(START, agent)
        graph.add_conditional_edges(agent, lambda state: END if state["runs"] >= shape.iterations else agent)
        return graph.compile()
    previous: str | list[str] = START
    for group in shape.groups():
        for agent in group:
            graph.add_node(agent, _node(handler))
            graph.add_edge(previous, agent)
        previous = group[0] if len(group) == 1 else list(group)
    graph.add_edge(previous, END)
    return graph.compile()


def _node(handler: Callable[..., Any]) -> Any:
    if asyncio.iscoroutinefunction(handler):

        async def run_async(state: _State) -> dict[str, int]:
            await handler(None, state)
            return {"runs": 1}

        return run_async

    def run(state: _State) -> dict[str, int]:
        handler(None, state)
        return {"runs": 1}

    return run
