"""`DispatchInvocation`: one dispatch as the runtime runs it (the patterns' `Invocation`).

It holds the event, the deadline and the runs recorded so far, and runs one agent for a
pattern: BEFORE_AGENT_RUN callbacks, attempts through the agent's `AgentEndpoint` with the
retry policy, AFTER_AGENT_RUN callbacks, and AGENT_ERROR callbacks when the run failed for good.
Every call has a step key; a step the dispatch already finished is replayed, not run again,
and each finished step is recorded (runtime/steps.py) — a failure no AGENT_ERROR callback
recovered too, so that a replay raises it again instead of running the agent. An `Interrupt`
the handler raised is recorded as an "interrupted" run and raised to the pattern: not a
failure, not retried.

Hook rule (DESIGN "Hooks"): a callback's failure is never recorded as success. A raising
BEFORE_AGENT_RUN or AFTER_AGENT_RUN callback fails that agent run (status "error", the message
names the hook); AGENT_ERROR may still recover it; the circuit breaker is not charged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace

from actorflow.config import OrchestrationConfig
from actorflow.events import AgentResult, AgentRun, Event, State, describe_error
from actorflow.exceptions import AgentFailedError, AgentNotFoundError
from actorflow.hooks import CallbackArgs, CallbackRegistry, Hook
from actorflow.interrupts import Interrupt
from actorflow.runtime.endpoint import AgentEndpoint
from actorflow.runtime.metrics import Metrics
from actorflow.runtime.retry import RetryPolicy
from actorflow.runtime.steps import StepLog, failure_again
from actorflow.updates import DispatchUpdate

__all__ = ["DispatchInvocation"]

logger = logging.getLogger(__name__)


class DispatchInvocation:
    """Runs agents for one dispatch and records every attempt as an `AgentRun`."""

    def __init__(
        self,
        event: Event,
        settings: OrchestrationConfig,
        state: State,
        *,
        endpoints: Mapping[str, AgentEndpoint],
        callbacks: CallbackRegistry,
        retry: RetryPolicy,
        metrics: Metrics,
        not_found: Callable[[str], AgentNotFoundError],
        deadline: float,
        started: float | None = None,
        sink: Callable[[DispatchUpdate], None] | None = None,
        trace: str | None = None,
        steps: StepLog | None = None,
        step_prefix: str = "",
    ) -> None:
        self.event = event
        self.settings = settings
        self.enabled_agents = list(endpoints)
        self.latest = state
        self.runs: list[AgentRun] = []
        self._endpoints = endpoints
        self._callbacks = callbacks
        self._retry = retry
        self._metrics = metrics
        self._not_found = not_found
        self._deadline = deadline
        # what a nested flow's invocation takes over from its parent (runtime/flows.py)
        self.deadline, self.callbacks, self.metrics, self.not_found = deadline, callbacks, metrics, not_found
        # Streaming (DESIGN "Streaming a dispatch"): `started` is the dispatch's perf_counter
        # origin for `AgentRun.started_at`; `sink` takes updates when the dispatch is streamed
        # and is None otherwise (then nothing is built).
        self.started = time.perf_counter() if started is None else started
        self.sink = sink
        self.trace = trace
        """Tracing (actorflow/tracing.py): the `traceparent` of the span the agents' spans are
        children of (the dispatch's, or a nested flow's agent span); None when tracing is off."""
        # Step replay (runtime/steps.py): a nested flow's invocation shares its parent's log
        # and prefixes its keys with the flow call's key.
        self.steps = StepLog() if steps is None else steps
        self._step_prefix = step_prefix
        self._step_counts: dict[tuple[str, str | None, int | None], int] = {}

    @property
    def mode(self) -> str:
        return self.settings.mode

    def record(self, run: AgentRun) -> AgentRun:
        if run.started_at is None:  # a run the pattern decided (e.g. skipped): it started now
            run = replace(run, started_at=max(0.0, time.perf_counter() - self.started - run.duration))
        self.runs.append(run)
        self._metrics.observe_run(run.agent, run.status, run.duration, run.usage)
        if self.sink is not None:
            self.sink(DispatchUpdate("agent_finished", self.event.id, self._at(), run.agent, run))
        return run

    def _token_sink(self, agent: str) -> Callable[[str], None] | None:
        if self.sink is None:
            return None
        sink, event_id = self.sink, self.event.id
        return lambda text: sink(DispatchUpdate("token", event_id, self._at(), agent, text=text))

    def _at(self) -> float:
        return time.perf_counter() - self.started

    def _step_key(self, agent: str, phase: str | None, iteration: int | None) -> str:
        """This call's step key: agent, phase, iteration and the n-th call with that triple."""
        triple = (agent, phase, iteration)
        count = self._step_counts[triple] = self._step_counts.get(triple, 0) + 1
        return f"{self._step_prefix}{agent}:{phase or ''}:{iteration or ''}:{count}"

    def _replay(self, agent: str, run: AgentRun, output: State | AgentFailedError) -> State:
        """A finished step: its original run again, its recorded output or failure (no agent
        call, no hooks)."""
        self.runs.append(run)
        if self.sink is not None:
            self.sink(DispatchUpdate("agent_finished", self.event.id, self._at(), agent, run))
        if isinstance(output, AgentFailedError):
            raise failure_again(output)
        return output.clone()

    async def _finished(self, key: str, run: AgentRun, output: State | AgentFailedError) -> None:
        """Record a finished step; with a journal it is durable before the pattern goes on."""
        self.steps.done[key] = (run, output)
        if self.steps.write is not None:
            await self.steps.write(key, run, output)

    def dismiss(self, interrupt: Interrupt, reason: str) -> None:
        """The interrupted runs of the branch that raised `interrupt` (its own, and its nested
        flow's agents') become "cancelled" with `reason`."""
        branch = interrupt.agent.split("/")[0]
        for index, run in enumerate(self.runs):
            if run.status == "interrupted" and (run.agent == branch or run.agent.startswith(f"{branch}/")):
                self.runs[index] = replace(run, status="cancelled", error=reason)

    def _interrupted(self, interrupt: Interrupt, run: AgentRun, agent: str, key: str) -> Interrupt:
        self.record(run)
        if interrupt.step is None:  # raised by this agent's handler (else by a nested flow's agent)
            interrupt.agent, interrupt.step = agent, key
        else:
            interrupt.agent = f"{agent}/{interrupt.agent}"
        return interrupt

    async def call(
        self, agent: str, state: State, *, phase: str | None = None, iteration: int | None = None
    ) -> State:
        endpoint = self._endpoints.get(agent)
        if endpoint is None:
            raise self._not_found(agent)
        key = self._step_key(agent, phase, iteration)
        if (done := self.steps.done.get(key)) is not None:
            return self._replay(agent, *done)
        if self.steps.resume is not None:
            state = self.steps.resumed_input(key, state)
        if self._callbacks.sees_input():
            state = state.clone()  # callbacks may change what they are given; the caller's state stays as it was

        args = CallbackArgs(self.event, state, agent_id=agent, mode=self.mode)
        try:
            await self._callbacks.fire(Hook.BEFORE_AGENT_RUN, args)
        except Exception as err:
            failure = _hook_failure(agent, Hook.BEFORE_AGENT_RUN, err)
            run = self.record(AgentRun(agent, "error", 0.0, failure.cause, 1, iteration, phase))
            return await self._failed(key, run, state, failure)
        state = args.state

        async def accept(result: AgentResult) -> State:
            after = CallbackArgs(self.event, result.output_state, agent_id=agent, agent_result=result, mode=self.mode)
            try:
                await self._callbacks.fire(Hook.AFTER_AGENT_RUN, after)
            except Exception as err:
                raise _hook_failure(agent, Hook.AFTER_AGENT_RUN, err) from err
            return after.state

        number = spent = 0
        while True:
            number += 1
            started = time.perf_counter()
            started_at = started - self.started
            if self.sink is not None:
                self.sink(DispatchUpdate("agent_started", self.event.id, started_at, agent))
            message = (self.event, state) if self.trace is None else (self.event, state, (self.trace, number))
            try:
                if getattr(endpoint, "nested", False):  # a nested flow (runtime/flows.py)
                    attempt = await endpoint.attempt(message, accept, parent=self, step=key)
                else:
                    attempt = await endpoint.attempt(message, accept, self._token_sink(agent))
            except asyncio.CancelledError:
                elapsed = time.perf_counter() - started
                reason = "cancelled: the dispatch ended before the agent answered"
                self.record(AgentRun(agent, "cancelled", elapsed, reason, number, iteration, phase, None, started_at))
                raise
            except Interrupt as interrupt:  # inside a nested flow
                elapsed = time.perf_counter() - started
                run = AgentRun(agent, "interrupted", elapsed, None, number, iteration, phase, None, started_at)
                raise self._interrupted(interrupt, run, agent, key) from None
            error = attempt.error
            usage = attempt.result.usage if attempt.result is not None else None
            run = AgentRun(
                agent, attempt.status, attempt.duration, error and error.cause, number, iteration, phase, usage,
                started_at,
            )
            if attempt.interrupt is not None:
                raise self._interrupted(attempt.interrupt, run, agent, key)
            run = self.record(run)
            if attempt.output is not None:
                await self._finished(key, run, attempt.output)
                return attempt.output
            retryable = attempt.retryable or self._retry.retries_error(attempt.type_names)
            spent += not attempt.free
            delay = max(self._retry.delay(max(1, spent)), attempt.retry_after or 0.0)
            if not retryable or spent > self._retry.max_retries or time.monotonic() + delay >= self._deadline:
                return await self._failed(key, run, state, error)
            self._metrics.retry(agent)
            await asyncio.sleep(delay)

    async def _failed(self, key: str, run: AgentRun, state: State, failure: AgentFailedError) -> State:
        """The failure is final unless an AGENT_ERROR callback returns a State (recovery).
        Either way the step is finished: a final failure is recorded and raised."""
        agent = run.agent
        args = CallbackArgs(self.event, state, agent_id=agent, error=failure, mode=self.mode)
        try:
            recovered = await self._callbacks.fire(Hook.AGENT_ERROR, args)
        except Exception as err:
            logger.debug("AGENT_ERROR callback for %s raised %s; the failure stands", agent, describe_error(err))
            recovered = False
        if recovered:
            await self._finished(key, run, args.state)
            return args.state
        await self._finished(key, run, failure_again(failure))
        raise failure


def _hook_failure(agent: str, hook: Hook, err: Exception) -> AgentFailedError:
    cause = f"{hook.name} callback raised {describe_error(err)}"
    return AgentFailedError(f"agent {agent!r} failed: {cause}", agent=agent, cause=cause)
