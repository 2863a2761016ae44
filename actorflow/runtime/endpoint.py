"""`AgentEndpoint`: the one object that calls agent X.

It owns the agent's actors (one per replica), its circuit breaker, what it knows of restarts,
and how a call ends: answered, failed, timed out, cancelled. Every attempt acquires a breaker
permit and a replica and gives both back in `finally`, whatever happens.

A call nobody waits for any more (timeout, cancellation) is cancelled on the actor. An async
handler stops there. A synchronous handler cannot be interrupted in its thread, so its process
must be recycled (killed and restarted by Ray) for the abandoned work to stop:
- with `max_concurrency` 1 (a classic mailbox) nothing else can run on that process while the
  abandoned call holds it, so it is recycled at once; the calls queued behind it are retried
  on the restarted process without using their retry budget. A call abandoned while it still
  waits in the mailbox (an older call of this supervisor is ahead of it) is only cancelled:
  the process is busy with someone else's call and is left alone. Each supervisor knows only
  its own calls: with `[runtime] supervisors` > 1 a recycle can still end another supervisor's
  call, which then fails as a restart and is retried under that dispatch's retry policy;
- with more, other calls may be running there: the replica is *retired* — it takes no new
  calls, the calls already on it finish, then it is recycled.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError, PendingCallsLimitExceeded, RayActorError

from actorflow.config import AgentConfig
from actorflow.events import AgentResult, RunStatus, State, describe_error, pack_call, rebuild_result
from actorflow.exceptions import ActorflowError, AgentFailedError, CircuitOpenError, MailboxFullError
from actorflow.interrupts import Interrupt
from actorflow.runtime.agent_actor import AgentFailure
from actorflow.runtime.breaker import CircuitBreaker
from actorflow.runtime.replicas import replica_processes

__all__ = ["AgentActors", "AgentEndpoint", "Attempt"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AgentActors:
    """The actors the runner started for one agent: what it hands to the supervisor."""

    name: str
    """The agent's name."""
    config: AgentConfig
    """Its [agents.NAME] settings (file plus code overrides)."""
    handles: list[Any]
    """Ray actor handles, one per replica."""
    pids: list[int]
    """Process id of each replica when it started."""
    is_async: bool
    """True for async handlers (cancellable on their event loop)."""
    concurrency: int = 1
    """Messages one replica handles at once."""
    streams_tokens: bool = False
    """True for handlers that stream text (LLM agents): a streamed dispatch calls them through
    the actor's `handle_stream`; every other call takes the plain `handle`."""
    traced: bool = False
    """Tracing is on: a process is asked to export its buffered spans before it is recycled."""


@dataclass(slots=True)
class Attempt:
    """How one attempt ended."""

    status: RunStatus
    """ok | error | timeout | circuit_open | interrupted."""
    duration: float
    """Seconds from the attempt's start to its end."""
    output: State | None = None
    """The accepted output state (ok only)."""
    result: AgentResult | None = None
    """What the agent returned (ok only)."""
    error: AgentFailedError | None = None
    """The failure (not ok)."""
    retryable: bool = False
    """True when the runtime knows the failure is worth retrying (timeouts, restarts)."""
    type_names: tuple[str, ...] = ()
    """For a handler's exception: the class names of its MRO (for `retryable_errors`)."""
    retry_after: float | None = None
    """Seconds the failure asked to wait before a retry (e.g. an LLM provider's Retry-After)."""
    free: bool = False
    """The process was recycled under this call (another call overran): retry it without
    counting it against the retry budget."""
    interrupt: Interrupt | None = None
    """The `Interrupt` the handler raised (status "interrupted"): not a failure."""


@dataclass(slots=True)
class _Replica:
    handle: Any
    pid: int
    in_flight: int = 0
    restarts: int = 0
    recycles: int = 0
    """Times this endpoint killed the process to recycle it (calls in flight then are not at fault)."""
    retiring: bool = False
    """Takes no new calls; recycled once its calls have ended (an abandoned sync call)."""
    dead: bool = False
    """It did not come back after a restart (restarts used up, or no node can host it)."""
    back: asyncio.Future | None = None
    """Set while the replica restarts: done when it answers again."""
    sent: list[Any] = field(default_factory=list)
    """Calls sent and not yet ended, oldest first (a one-at-a-time actor runs them in this order)."""

    @property
    def available(self) -> bool:
        return not self.retiring and (self.back is None or self.back.done())


@dataclass(slots=True)
class _Verdict:
    """The breaker's verdict on one attempt: None until known (no verdict gives the slot back)."""

    value: bool | None = None


class AgentEndpoint:
    """Calls one agent: replica choice, breaker, timeout, cancellation, restarts."""

    def __init__(self, actors: AgentActors, breaker: CircuitBreaker) -> None:
        self.name = actors.name
        self.config = actors.config
        self.is_async = actors.is_async
        self.concurrency = actors.concurrency
        self.streams_tokens = actors.streams_tokens
        self.traced = actors.traced
        self.breaker = breaker
        self._replicas = [_Replica(handle, pid) for handle, pid in zip(actors.handles, actors.pids)]
        self._changed: list[asyncio.Future] = []
        # Only a one-at-a-time sync handler's recycle depends on which of its calls runs (see module doc).
        self._ordered = not self.is_async and self.concurrency == 1

    # -- for operators -----------------------------------------------------------------------

    @property
    def handles(self) -> list[Any]:
        return [replica.handle for replica in self._replicas]

    @property
    def pids(self) -> list[int]:
        return [replica.pid for replica in self._replicas]

    @property
    def restarts(self) -> int:
        return sum(replica.restarts for replica in self._replicas)

    @property
    def in_flight(self) -> int:
        return sum(replica.in_flight for replica in self._replicas)

    # -- calling -----------------------------------------------------------------------------

    async def attempt(
        self,
        message: Any,
        accept: Callable[[AgentResult], Awaitable[State]],
        on_token: Callable[[str], None] | None = None,
    ) -> Attempt:
        """Send `message` to one replica and wait for the answer (bounded by `timeout_seconds`).

        `accept` turns an answer into the output state (the AFTER_AGENT_RUN hooks); if it
        raises `AgentFailedError` the attempt fails without a breaker verdict (the actor
        answered). Cancelling the caller cancels the call. With `on_token` (a streamed dispatch)
        the call goes to the actor's `handle_stream` and each text chunk is passed on as it comes.
        """
        started = time.perf_counter()
        if not self.streams_tokens:
            on_token = None
        if not self.breaker.try_acquire():
            message_ = (
                f"circuit breaker for agent {self.name!r} is open after repeated failures; "
                f"next trial call in {self.breaker.retry_in():.1f}s"
            )
            cause = f"CircuitOpenError: {message_}"
            return Attempt("circuit_open", 0.0, error=CircuitOpenError(message_, agent=self.name, cause=cause))
        verdict = _Verdict()
        try:
            replica = await self._acquire()
            try:
                return await self._send(replica, message, accept, started, verdict, on_token)
            finally:
                self._release(replica)
        finally:
            self.breaker.settle(verdict.value)

    async def _send(
        self,
        replica: _Replica,
        message: Any,
        accept: Callable[[AgentResult], Awaitable[State]],
        started: float,
        verdict: _Verdict,
        on_token: Callable[[str], None] | None = None,
    ) -> Attempt:
        def failed(status: RunStatus, cause: str, *, retryable: bool = False, kind: type = AgentFailedError) -> Attempt:
            error = kind(f"agent {self.name!r} failed: {cause}", agent=self.name, cause=cause)
            return Attempt(status, time.perf_counter() - started, error=error, retryable=retryable)

        recycles = replica.recycles
        try:
            packed = pack_call(message[0], message[1]) + message[2:]  # (event, state[, trace])
            if on_token is None:
                ref = replica.handle.handle.remote(packed)
            else:
                ref = replica.handle.handle_stream.options(num_returns="streaming").remote(packed)
        except PendingCallsLimitExceeded:
            cause = f"MailboxFullError: mailbox of agent {self.name!r} is full ({self.config.mailbox_size} pending calls)"
            return failed("error", cause, kind=MailboxFullError)
        except Exception as err:  # the message cannot be sent, e.g. a value in the state does not pickle
            return failed("error", f"the message cannot be sent to the agent: {describe_error(err)}")
        timeout = self.config.timeout_seconds
        if self._ordered:
            replica.sent.append(ref)
        try:
            answer = ref if on_token is None else _streamed(ref, on_token)
            value = await (asyncio.wait_for(answer, timeout) if timeout else answer)
        except asyncio.TimeoutError:
            self._abandon(replica, ref)
            verdict.value = False
            cause = f"TimeoutError: agent {self.name!r} did not answer within timeout_seconds = {timeout}"
            return failed("timeout", cause, retryable=True)
        except asyncio.CancelledError:
            self._abandon(replica, ref)
            raise
        except (RayActorError, ActorUnavailableError) as err:
            if replica.recycles != recycles:  # we recycled the process under this call: not its fault
                cause = f"the process of agent {self.name!r} was recycled after another call overran ({_first_line(err)})"
                attempt = failed("error", cause, retryable=True)
                attempt.free = True
                return attempt
            gone = isinstance(err, ActorDiedError) and await self._gone(replica)
            if gone:
                verdict.value = False  # supervision cannot bring it back: the breaker is charged
            else:
                self._watch_restart(replica)  # waiting for a restart is not the agent's fault
            cause = f"{type(err).__name__}: the actor of agent {self.name!r} died or is unreachable ({_first_line(err)})"
            return failed("error", cause, retryable=not gone)
        except ray.exceptions.RayError as err:
            verdict.value = False
            return failed("error", f"{type(err).__name__}: {_first_line(err)}")
        finally:
            if self._ordered:
                replica.sent.remove(ref)

        if isinstance(value, Interrupt):  # no verdict: the breaker is not charged
            return Attempt("interrupted", time.perf_counter() - started, interrupt=value)
        if isinstance(value, AgentFailure):
            verdict.value = False
            logger.debug("agent %s failed:\n%s", self.name, value.traceback)
            attempt = failed("error", value.describe())
            attempt.type_names, attempt.retry_after = value.type_names, value.retry_after
            return attempt
        value = rebuild_result(value)
        try:
            output = await accept(value)
        except AgentFailedError as err:
            return Attempt("error", time.perf_counter() - started, error=err)
        verdict.value = True
        return Attempt("ok", time.perf_counter() - started, output=output, result=value)

    # -- replicas ----------------------------------------------------------------------------

    async def _acquire(self) -> _Replica:
        """The available replica with the fewest calls in flight, waiting while none is."""
        while True:
            available = [replica for replica in self._replicas if replica.available]
            if available:
                replica = min(available, key=lambda r: r.in_flight)
                replica.in_flight += 1
                return replica
            changed = asyncio.get_running_loop().create_future()
            self._changed.append(changed)
            await changed

    def _release(self, replica: _Replica) -> None:
        replica.in_flight -= 1
        if replica.retiring and replica.in_flight == 0:
            self._recycle(replica)
        self._notify()

    def _notify(self) -> None:
        changed, self._changed = self._changed, []
        for future in changed:
            if not future.done():
                future.set_result(None)

    def _abandon(self, replica: _Replica, ref: ray.ObjectRef) -> None:
        """Stop a call nobody waits for; retire a sync handler's replica (see module doc)."""
        try:
            ray.cancel(ref)
        except Exception as err:  # the actor may already be gone; nothing more to stop
            logger.debug("cancelling a call to %s: %s", self.name, describe_error(err))
        if self.is_async or self.config.max_restarts == 0:
            return
        if self.concurrency == 1:
            if replica.sent and replica.sent[0] is ref:  # it is the call the process is running
                self._recycle(replica)
        else:
            replica.retiring = True

    def _recycle(self, replica: _Replica) -> None:
        """Kill the replica's process now; Ray restarts it and calls wait for it to be back."""
        if replica.back is None or replica.back.done():
            replica.recycles += 1
            replica.back = asyncio.ensure_future(self._restart(replica, kill=True))

    async def _gone(self, replica: _Replica) -> bool:
        """Will Ray not bring this replica back (restarts used up, or none allowed)?"""
        if replica.dead or self.config.max_restarts == 0:
            return True
        [process] = await asyncio.to_thread(replica_processes, [replica.handle], [replica.pid])
        return process.state == "DEAD"

    def _watch_restart(self, replica: _Replica) -> None:
        """Ray restarts a replica that died: calls to it wait until it answers again."""
        if replica.back is None or replica.back.done():
            replica.back = asyncio.ensure_future(self._restart(replica, kill=False))

    async def _restart(self, replica: _Replica, *, kill: bool) -> None:
        try:
            if kill:
                if self.traced:  # its spans first; and the pid it answers from is the one to replace
                    replica.pid = await _flushed(replica.handle) or replica.pid
                ray.kill(replica.handle, no_restart=False)
            replica.pid = await _until_ready(replica.handle, replica.pid)
            replica.restarts += 1
        except Exception as err:
            replica.dead = True  # its calls now fail for good, and charge the breaker
            logger.warning("agent %s: a replica did not come back: %s", self.name, describe_error(err))
        finally:
            replica.retiring = False
            replica.back = None
            self._notify()


async def _streamed(generator: Any, on_token: Callable[[str], None]) -> Any:
    """The answer of a `handle_stream` call, passing each text chunk before it to `on_token`."""
    async for ref in generator:
        item = await ref
        if not isinstance(item, str):
            return item
        on_token(item)
    raise ray.exceptions.RayError("the agent's stream ended without an answer")


async def _flushed(actor: Any, within: float = 3.0) -> int | None:
    """Let a process about to be recycled export its buffered spans first (bounded, best effort:
    its event loop is free, the abandoned call runs in a handler thread); the pid that flushed."""
    try:
        return await asyncio.wait_for(actor.flush.remote(), within)
    except Exception as err:  # a dying or unreachable actor has nothing more to give
        logger.debug("flushing before a recycle: %s", describe_error(err))
        return None


async def _until_ready(actor: Any, old_pid: int, within: float = 60.0) -> int:
    """The pid of the actor's new process once it answers, within `within` seconds.
    `ray.kill` is asynchronous: until it lands, a call can still reach the old process (same
    pid) or fail on the dying one; a restart no node can host never answers."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            pid = await asyncio.wait_for(actor.ready.remote(), max(0.1, min(2.0, deadline - time.monotonic())))
            if pid != old_pid:
                return pid
        except (RayActorError, ActorUnavailableError, asyncio.TimeoutError):
            pass
        await asyncio.sleep(0.05)
    raise ActorflowError(f"the actor did not come back in a new process within {within:.0f}s")


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
