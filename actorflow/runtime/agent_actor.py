"""The agent actor: one Ray actor process hosting one agent's handler and private state."""

from __future__ import annotations

import asyncio
import inspect
import os
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import ray

from actorflow.agent import Agent
from actorflow.events import CALL_LENGTH, AgentResult, State, unpack_call
from actorflow.interrupts import Interrupt
from actorflow.llm import tokens  # a module reference: the actor class may be pickled by value
from actorflow import tracing

__all__ = ["AgentActor", "AgentFailure", "is_async_handler"]


@dataclass(frozen=True, slots=True)
class AgentFailure:
    """A handler raised: sent back as a value so the supervisor sees the class names, not a RayTaskError."""

    type_name: str
    """The exception's class name."""
    type_names: tuple[str, ...]
    """The class names of its whole MRO (for `retryable_errors` matching by base class)."""
    message: str
    """`str(exception)`."""
    traceback: str
    """The formatted traceback in the agent process."""
    retry_after: float | None = None
    """Seconds the failure asks to wait before a retry (an exception's `retry_after`, e.g. an
    LLM provider's Retry-After), else None."""

    def describe(self) -> str:
        return f"{self.type_name}: {self.message}" if self.message else self.type_name


_CALL_DONE = object()


def is_async_handler(handler: Any) -> bool:
    """True when the handler (a function or an Agent subclass) runs as a coroutine."""
    fn = handler.run if isinstance(handler, (type, Agent)) else handler
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None))


def _retry_after(err: BaseException) -> float | None:
    value = getattr(err, "retry_after", None)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def _as_result(output: Any, state: State, started: datetime, elapsed: float) -> AgentResult:
    """Normalise what a handler returned into an AgentResult (see DESIGN: Agents)."""
    if isinstance(output, AgentResult):
        if not isinstance(output.output_state, State):
            raise TypeError(f"AgentResult.output_state must be a State, got {type(output.output_state).__name__}")
        if not output.duration:
            output.start_time, output.duration = started, elapsed
            output.end_time = started + timedelta(seconds=elapsed)
        return output
    if output is None:
        out = state
    elif isinstance(output, State):
        out = output
    elif isinstance(output, dict):
        out = state
        for key, value in output.items():
            out.set(key, value)
    else:
        raise TypeError(
            f"a handler must return a State, an AgentResult, a dict or None, got {type(output).__name__}"
        )
    return AgentResult(out, started, started + timedelta(seconds=elapsed), elapsed)


@ray.remote(max_restarts=-1, max_task_retries=0)
class AgentActor:
    """Hosts a handler function or an `Agent` subclass instance.

    The actor is async: async handlers run on its event loop, sync handlers on a thread pool
    sized to the agent's `max_concurrency`, so the loop stays free to take cancellations.
    Ray's actor `max_concurrency` bounds how many messages it handles at once (1 = a classic
    one-message-at-a-time mailbox).
    """

    def __init__(self, name: str, handler: Any, max_concurrency: int = 1, traced: bool = False) -> None:
        self._name = name
        # Tracing (actorflow/tracing.py): None when off, and then a call costs one `is None` check.
        self._tracing = tracing.setup(agent=name) if traced else None
        if isinstance(handler, type) and issubclass(handler, Agent):
            self._agent: Agent | None = handler()
            self._agent.name = name
            self._fn = self._agent.run
        elif isinstance(handler, Agent):  # built by the runtime with its settings (an LLM agent)
            self._agent = handler
            self._fn = handler.run
        else:
            self._agent = None
            self._fn = handler
        self._is_async = is_async_handler(handler)
        # Spare threads beyond max_concurrency: a call abandoned by a timeout keeps its thread
        # until the process is recycled, and must not starve the calls still running meanwhile.
        threads = max_concurrency if max_concurrency == 1 else 2 * max_concurrency
        self._pool = None if self._is_async else ThreadPoolExecutor(threads, thread_name_prefix=name)
        self._started: asyncio.Future | None = None

    async def _ensure_started(self) -> None:
        if self._started is None:
            self._started = asyncio.get_running_loop().create_future()
            try:
                if self._agent is not None:
                    await _maybe_await(self._agent.on_start())
                self._started.set_result(None)
            except BaseException as err:
                self._started.set_exception(err)
        await asyncio.shield(self._started)

    async def ready(self) -> int:
        """Runs `on_start` (once) and returns the actor's process id."""
        await self._ensure_started()
        return os.getpid()

    async def handle(self, message: tuple) -> tuple | AgentFailure | Interrupt:
        """Run the handler once on `message` (`events.pack_call(event, state)`); the result
        comes back as `AgentResult.flat()`, a failure as an AgentFailure value, an `Interrupt`
        the handler raised as itself (it is not a failure).

        Event and state travel as one argument, and both ways as plain tuples: Ray serializes
        and ships every argument on its own, and pickles plain values several times cheaper than
        objects with a reducer; each saves a measurable part of each call's overhead.
        When tracing is on, `(traceparent, attempt)` follows the packed event and state.
        """
        if self._tracing is not None and len(message) > CALL_LENGTH:
            return await self._traced(message)
        event, state = unpack_call(message)
        started = datetime.now(timezone.utc)
        t0 = time.perf_counter()
        try:
            await self._ensure_started()
            if self._is_async:
                output = await self._fn(event, state)
            else:
                loop = asyncio.get_running_loop()
                output = await _maybe_await(await loop.run_in_executor(self._pool, self._fn, event, state))
            return _as_result(output, state, started, time.perf_counter() - t0).flat()
        except Interrupt as interrupt:
            return interrupt
        except Exception as err:
            return AgentFailure(
                type(err).__name__,
                tuple(cls.__name__ for cls in type(err).__mro__),
                str(err),
                traceback.format_exc(),
                _retry_after(err),
            )

    async def _traced(self, message: tuple) -> tuple | AgentFailure:
        """`handle` inside an `actorflow.agent` span, a child of the dispatch span in the message."""
        with self._tracing.agent_span(self._name, message[CALL_LENGTH]) as span:
            answer = await self.handle(message[:CALL_LENGTH])
        failed = isinstance(answer, AgentFailure)
        status = "error" if failed else "interrupted" if isinstance(answer, Interrupt) else "ok"
        self._tracing.end(span, answer.describe() if failed else None, status)
        return answer

    async def handle_stream(self, message: tuple):  # called with num_returns="streaming"
        """`handle`, yielding the text chunks the handler streams (an LLM agent's tokens, as
        `str`) as they come, then the result. Used only when the dispatch is streamed."""
        chunks: asyncio.Queue[Any] = asyncio.Queue()
        reset = tokens.token_sink.set(chunks.put_nowait)
        try:
            call = asyncio.ensure_future(self.handle(message))  # the task copies the context: it sees the sink
        finally:
            tokens.token_sink.reset(reset)
        call.add_done_callback(lambda _: chunks.put_nowait(_CALL_DONE))
        try:
            while (chunk := await chunks.get()) is not _CALL_DONE:
                yield chunk
            yield call.result()
        finally:
            if not call.done():
                call.cancel()

    async def stop(self) -> None:
        """Runs `on_stop` (once) and exports the spans still buffered; the runner then removes the actor."""
        try:
            if self._agent is not None and self._started is not None:
                await _maybe_await(self._agent.on_stop())
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
        finally:
            await self.flush()

    async def flush(self) -> int:
        """Exports the spans still buffered (before this process is stopped or recycled); its pid."""
        if self._tracing is not None:
            await asyncio.to_thread(self._tracing.flush)
        return os.getpid()
