"""The raw-Ray floor: the same shapes hand-written with plain Ray, no actorflow.

What a Ray user would write by hand: one actor per agent, and an async supervisor actor that
calls them and gathers their futures group by group. actorflow's design is this plus hooks,
retries, breakers, timeouts and bookkeeping, so its overhead ratio is measured against it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

import ray

from benchmarks.shapes import Shape

__all__ = ["RawRay"]


@ray.remote
class _AsyncAgent:
    def __init__(self, handler: Callable[..., Any]) -> None:
        self._handler = handler

    async def pid(self) -> int:
        return os.getpid()

    async def run(self, state: dict[str, Any]) -> dict[str, Any]:
        await self._handler(None, state)
        return state


@ray.remote
class _ThreadedAgent:
    def __init__(self, handler: Callable[..., Any]) -> None:
        self._handler = handler

    def pid(self) -> int:
        return os.getpid()

    def run(self, state: dict[str, Any]) -> dict[str, Any]:
        self._handler(None, state)
        return state


@ray.remote(num_cpus=0)
class _Supervisor:
    def __init__(self, agents: dict[str, Any], groups: dict[str, list[tuple[str, ...]]]) -> None:
        self._agents = agents
        self._groups = groups

    async def pid(self) -> int:
        return os.getpid()

    async def run(self, mode: str, state: dict[str, Any]) -> dict[str, Any]:
        return await _walk(self._agents, self._groups[mode], state)


async def _walk(agents: dict[str, Any], groups: list[tuple[str, ...]], state: dict[str, Any]) -> dict[str, Any]:
    """Run the groups one after the other, the agents of a group at once, merging their outputs."""
    for group in groups:
        outputs = await asyncio.gather(*(agents[name].run.remote(state) for name in group))
        state = dict(state)
        for output in outputs:
            state.update(output)
    return state


class RawRay:
    """Agent actors running `handler` for every agent name of `shapes`, and one supervisor
    that runs any of the shapes."""

    def __init__(self, handler: Callable[..., Any], shapes: list[Shape], *, agent_concurrency: int) -> None:
        names = sorted({name for shape in shapes for name in shape.agents})
        cls = _AsyncAgent if asyncio.iscoroutinefunction(handler) else _ThreadedAgent
        self._agents = {name: cls.options(max_concurrency=agent_concurrency).remote(handler) for name in names}
        self._groups = {shape.mode: shape.groups() for shape in shapes}
        self._supervisor = _Supervisor.options(max_concurrency=1000).remote(
            self._agents, self._groups
        )
        self._pids = dict(zip(names, ray.get([self._agents[name].pid.remote() for name in names])))
        self.supervisor_pid: int = ray.get(self._supervisor.pid.remote())
        """The supervisor actor's process id (to measure its CPU time)."""

    def direct(self, mode: str, state: dict[str, Any]) -> Any:
        """The shape driven from the caller itself, no supervisor: raw Ray direct (a coroutine)."""
        return _walk(self._agents, self._groups[mode], state)

    def pids(self, shape: Shape) -> list[int]:
        return [self._pids[name] for name in shape.agents]

    async def dispatch(self, mode: str, state: dict[str, Any]) -> dict[str, Any]:
        return await self._supervisor.run.remote(mode, state)

    def stop(self) -> None:
        for actor in [self._supervisor, *self._agents.values()]:
            ray.kill(actor)

    def __enter__(self) -> RawRay:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
