"""Streaming a dispatch: how `DispatchUpdate`s travel from the supervisor to the caller.

Transport: a Ray *streaming generator*. The supervisor's `dispatch_stream` is an async generator
method called with `.options(num_returns="streaming")`; it runs the very same `dispatch` as a
task with an update sink (an `asyncio.Queue` of this dispatch only) and yields each update as
it lands. The caller iterates the `ObjectRefGenerator`: Ray pushes every item to the caller as
soon as it is yielded, so there is no polling loop on either side, no extra actor to host a
queue (an async queue actor would add one more hop and one more thing to clean up), and Ray's
own cancellation does the rest: a consumer that stops iterating (or an HTTP client that
disconnects) calls `ray.cancel` on the generator, which cancels the supervisor's task, whose
`finally` cancels the dispatch task, whose agent calls are cancelled and recorded `cancelled`.

The non-streaming path is untouched: `dispatch` has no sink then, and `DispatchInvocation`
builds no update at all.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import ray
from ray.exceptions import RayError

from actorflow.events import Event
from actorflow.updates import DispatchUpdate

__all__ = ["stream_dispatch", "iterate", "iterate_async"]

_DONE = object()


async def stream_dispatch(
    dispatch: Callable[..., Awaitable[Any]], event: Event, settings: Any = None
) -> AsyncIterator[DispatchUpdate]:
    """Run `dispatch(event, settings, sink=...)` and yield its updates as they happen, ending with
    `dispatch_finished`; closing or cancelling this generator cancels the dispatch."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    yield DispatchUpdate("dispatch_started", event.id, 0.0)
    task = asyncio.ensure_future(dispatch(event, settings, sink=queue.put_nowait))
    task.add_done_callback(lambda _: queue.put_nowait(_DONE))
    try:
        while (update := await queue.get()) is not _DONE:
            yield update
        result = task.result().result
        yield DispatchUpdate("dispatch_finished", event.id, result.duration, result=result)
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task  # the agents' calls are cancelled and recorded before we go


def iterate(generator: Any, done: Callable[[], None]) -> Iterator[DispatchUpdate]:
    """The caller's side (sync): each item of the supervisor's streaming generator; stopping
    early cancels the dispatch."""
    finished = False
    try:
        for ref in generator:
            update: DispatchUpdate = ray.get(ref)
            finished = update.kind == "dispatch_finished"
            yield update
    finally:
        if not finished:
            _cancel(generator)
        done()


async def iterate_async(generator: Any, done: Callable[[], None]) -> AsyncIterator[DispatchUpdate]:
    """The caller's side (asyncio): as `iterate`, without blocking the event loop."""
    finished = False
    try:
        async for ref in generator:
            update: DispatchUpdate = await ref
            finished = update.kind == "dispatch_finished"
            yield update
    finally:
        if not finished:
            _cancel(generator)
        done()


def _cancel(generator: Any) -> None:
    with contextlib.suppress(RayError, ValueError, TypeError):
        ray.cancel(generator)
