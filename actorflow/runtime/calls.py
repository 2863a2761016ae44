"""Running one agent inside a dispatch: hooks, circuit breaker, mailbox, timeout, retries.

`AgentCalls` is the runtime side of the pattern seam (`patterns.base.AgentCaller`). It is
created per dispatch by the supervisor and records every attempt as an `AgentRun`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError, PendingCallsLimitExceeded, RayActorError

from actorflow.events import AgentResult, AgentRun, Event, RunStatus, State, describe_error, names
from actorflow.exceptions import AgentFailedError, AgentNotFoundError, CircuitOpenError, MailboxFullError
from actorflow.hooks import CallbackArgs, Hook
from actorflow.runtime.agent_actor import AgentFailure

if TYPE_CHECKING:
    from actorflow.runtime.supervisor import SupervisorCore

__all__ = ["AgentCalls"]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Attempt:
    """How one attempt ended."""

    result: AgentResult | None = None
    error: AgentFailedError | None = None
    retryable: bool = False
    retry_after: float | None = None


class AgentCalls:
    """Runs agents for one dispatch (the `AgentCaller` the patterns call)."""

    def __init__(self, core: SupervisorCore, event: Event, mode: str, deadline: float) -> None:
        self._core = core
        self._event = event
        self._mode = mode
        self._deadline = deadline
        self.runs: list[AgentRun] = []

    def record(self, run: AgentRun) -> None:
        self.runs.append(run)
        self._core.metrics.observe_run(run.agent, run.status, run.duration)

    async def __call__(
        self, agent: str, state: State, *, phase: str | None = None, iteration: int | None = None
    ) -> State:
        core = self._core
        pool = core.pools.get(agent)
        if pool is None:
            raise core.not_found(agent)
        callbacks = core.callbacks

        args = CallbackArgs(self._event, state, agent_id=agent, mode=self._mode)
        try:
            await callbacks.fire(Hook.BEFORE_AGENT_RUN, args)
        except Exception as err:
            self.record(AgentRun(agent, "error", 0.0, describe_error(err), 1, iteration, phase))
            failure = AgentFailedError(
                f"agent {agent!r} failed: BEFORE_AGENT_RUN callback raised {describe_error(err)}",
                agent=agent,
                cause=describe_error(err),
            )
            return await self._failed(agent, state, failure)
        state = args.state

        attempt = 0
        while True:
            attempt += 1
            outcome = await self._attempt(agent, state, attempt, phase, iteration)
            if outcome.result is not None:
                break
            if not outcome.retryable or attempt > core.retry.max_retries:
                return await self._failed(agent, state, outcome.error)
            delay = max(core.retry.delay(attempt), outcome.retry_after or 0.0)
            if time.monotonic() + delay >= self._deadline:
                return await self._failed(agent, state, outcome.error)
            core.metrics.retries[agent] += 1
            await asyncio.sleep(delay)

        result = outcome.result
        args = CallbackArgs(self._event, result.output_state, agent_id=agent, agent_result=result, mode=self._mode)
        try:
            await callbacks.fire(Hook.AFTER_AGENT_RUN, args)
        except Exception as err:
            failure = AgentFailedError(
                f"agent {agent!r} failed: AFTER_AGENT_RUN callback raised {describe_error(err)}",
                agent=agent,
                cause=describe_error(err),
            )
            return await self._failed(agent, state, failure)
        return args.state

    async def _attempt(
        self, agent: str, state: State, attempt: int, phase: str | None, iteration: int | None
    ) -> _Attempt:
        core = self._core
        pool = core.pools[agent]
        breaker = core.breakers[agent]

        def finish(status: RunStatus, started: float, error: str | None = None, usage: dict | None = None) -> None:
            self.record(AgentRun(agent, status, time.perf_counter() - started, error, attempt, iteration, phase, usage))

        started = time.perf_counter()
        if not breaker.try_acquire():
            message = (
                f"circuit breaker for agent {agent!r} is open after repeated failures; "
                f"next trial call in {breaker.retry_in():.1f}s"
            )
            finish("circuit_open", started, f"CircuitOpenError: {message}")
            return _Attempt(error=CircuitOpenError(message, agent=agent, cause=message))

        index = pool.acquire()
        actor = pool.actors[index]
        try:
            await core.until_ready(pool, index)
            try:
                ref = actor.handle.remote((self._event, state))
            except PendingCallsLimitExceeded:
                breaker.release()
                message = f"mailbox of agent {agent!r} is full ({pool.config.mailbox_size} pending calls)"
                finish("error", started, f"MailboxFullError: {message}")
                return _Attempt(error=MailboxFullError(message, agent=agent, cause=message))
            try:
                timeout = pool.config.timeout_seconds
                value = await (asyncio.wait_for(ref, timeout) if timeout else ref)
            except asyncio.TimeoutError:
                core.abandon(pool, index, ref)
                breaker.record_failure()
                cause = f"TimeoutError: agent {agent!r} did not answer within timeout_seconds = {timeout}"
                finish("timeout", started, cause)
                return _Attempt(error=AgentFailedError(cause, agent=agent, cause=cause), retryable=True)
            except asyncio.CancelledError:
                core.abandon(pool, index, ref)
                breaker.release()
                finish("cancelled", started, "cancelled: the dispatch ended before the agent answered")
                raise
            except (RayActorError, ActorUnavailableError) as err:
                breaker.record_failure()
                gone = isinstance(err, ActorDiedError) and not core.may_restart(pool)
                if not gone:
                    core.watch_restart(pool, index)
                cause = f"{type(err).__name__}: the actor of agent {agent!r} died or is unreachable ({_first_line(err)})"
                finish("error", started, cause)
                return _Attempt(error=AgentFailedError(cause, agent=agent, cause=cause), retryable=not gone)
            except ray.exceptions.RayError as err:
                breaker.record_failure()
                cause = f"{type(err).__name__}: {_first_line(err)}"
                finish("error", started, cause)
                return _Attempt(error=AgentFailedError(cause, agent=agent, cause=cause))
        finally:
            pool.release(index)

        if isinstance(value, AgentFailure):
            breaker.record_failure()
            cause = value.describe()
            finish("error", started, cause)
            logger.debug("agent %s attempt %d failed:\n%s", agent, attempt, value.traceback)
            return _Attempt(
                error=AgentFailedError(f"agent {agent!r} failed: {cause}", agent=agent, cause=cause),
                retryable=core.retry.retries_error(value.type_names),
                retry_after=value.retry_after,
            )
        breaker.record_success()
        finish("ok", started, usage=value.usage)
        return _Attempt(result=value)

    async def _failed(self, agent: str, state: State, failure: AgentFailedError) -> State:
        """The failure is final unless an AGENT_ERROR callback returns a State (recovery)."""
        args = CallbackArgs(self._event, state, agent_id=agent, error=failure, mode=self._mode)
        try:
            if await self._core.callbacks.fire(Hook.AGENT_ERROR, args):
                return args.state
        except Exception as err:
            logger.debug("AGENT_ERROR callback for %s raised %s; the failure stands", agent, describe_error(err))
        raise failure


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def not_found_message(agent: str, registered: list[str], configured: set[str], disabled: set[str]) -> str:
    if agent in disabled:
        return f"agent {agent!r} is disabled (enabled = false in [agents.{agent}])"
    if agent in configured:
        return (
            f"agent {agent!r} has no handler: register one with runner.register_agent({agent!r}, handler) "
            f'or set handler = "package.module:attribute" in [agents.{agent}]'
        )
    return f"unknown agent {agent!r}; registered agents: {names(registered)}"


def agent_not_found(agent: str, registered: list[str], configured: set[str], disabled: set[str]) -> AgentNotFoundError:
    return AgentNotFoundError(
        not_found_message(agent, registered, configured, disabled), agent=agent, known=registered
    )
