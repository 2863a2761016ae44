"""`POST /v1/dispatch/stream`: a dispatch's updates as Server-Sent Events.

One SSE message per `DispatchUpdate` (`event: <kind>`, `data: <update.to_dict() as JSON>`),
ending after `dispatch_finished`, sent with `sse-starlette`'s `EventSourceResponse` (a
maintained helper that writes the SSE framing, sends keep-alive pings and — unlike a bare
`StreamingResponse` — watches for the client's disconnect and cancels our generator then; that
cancellation reaches `Runner.stream_async`, which cancels the dispatch).

A dispatch that fails before any agent started (unknown agent, a raising BEFORE_EVENT_HANDLING
callback) is answered as the usual 4xx/5xx JSON, like `/v1/dispatch`, not as a stream: the
route reads the stream up to the first `agent_started` before it answers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from sse_starlette import EventSourceResponse

from actorflow.events import Event
from actorflow.serve.errors import RequestError, status_by_name
from actorflow.serve.jsonio import dumps
from actorflow.updates import DispatchUpdate

__all__ = ["open_stream", "sse_response"]


async def open_stream(
    runner: Any, event: Event, overrides: dict[str, Any] | None = None, traceparent: str | None = None
) -> AsyncIterator[DispatchUpdate]:
    """Start streaming `event` (with orchestration `overrides`, under the caller's W3C
    `traceparent`); raise `RequestError` if it failed before any agent started. An invalid
    override raises `ConfigError` here (422)."""
    updates = runner.stream_async(event, traceparent=traceparent, **(overrides or {}))
    head: list[DispatchUpdate] = []
    try:
        async for update in updates:
            head.append(update)
            if update.kind == "agent_started":
                break
            if update.kind == "dispatch_finished":
                result = update.result
                if result is not None and not result.ok and not result.runs:
                    type_name, _, message = (result.error or "ActorflowError").partition(": ")
                    raise RequestError(status_by_name(type_name), type_name, message or type_name)
                break
    except BaseException:
        await updates.aclose()
        raise
    return _chain(head, updates)


async def _chain(head: list[DispatchUpdate], rest: AsyncIterator[DispatchUpdate]) -> AsyncIterator[DispatchUpdate]:
    try:
        for update in head:
            yield update
        if head[-1].kind != "dispatch_finished":
            async for update in rest:
                yield update
    finally:
        await rest.aclose()  # a disconnect lands here: closing the runner's stream cancels the dispatch


def sse_response(updates: AsyncIterator[DispatchUpdate], on_close: Callable[[], None]) -> EventSourceResponse:
    async def messages() -> AsyncIterator[dict[str, str]]:
        try:
            async for update in updates:
                yield {"event": update.kind, "data": dumps(update.to_dict())}
        finally:
            await updates.aclose()
            on_close()

    return EventSourceResponse(messages(), ping=15)
