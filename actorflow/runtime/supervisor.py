"""The supervisor: an async Ray actor that runs the patterns over the agent actors.

It owns an `AgentEndpoint` per agent (actors, breaker, restarts), the hooks and the metrics,
and runs each dispatch's pattern as a `DispatchInvocation`. It calls agent actors directly and
awaits their ObjectRefs: nothing in it blocks its event loop, so it handles many dispatches
at once.

With a journal (`[runtime] journal`) it opens the journal in its own process and records, per
dispatch, each finished step and then the result or the interrupt (runtime/durable.py); the
journal's I/O runs on its own thread(s), off the event loop. Without one, an interrupted
dispatch is kept in this actor's memory until `resume` (runtime/steps.py).
"""

from __future__ import annotations

import asyncio
import copy
import functools
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import ray
from ray import cloudpickle

from actorflow import tracing
from actorflow.config import AgentFlowConfig, OrchestrationConfig
from actorflow.events import DispatchResult, Event, State, describe_error, names, rebuild_dispatch_result
from actorflow.exceptions import ActorflowError, AgentNotFoundError, DispatchTimeoutError
from actorflow.hooks import CallbackArgs, CallbackRegistry, Hook
from actorflow.interrupts import Interrupt
from actorflow.patterns import ModeSpec, PatternOutcome, mode_spec
from actorflow.runtime.breaker import CircuitBreaker
from actorflow.runtime.durable import result_record, step_output_record
from actorflow.runtime.endpoint import AgentActors, AgentEndpoint
from actorflow.runtime.flows import FlowEndpoint, FlowPlan
from actorflow.runtime.invocation import DispatchInvocation
from actorflow.runtime.metrics import Metrics
from actorflow.runtime.replicas import replica_processes
from actorflow.runtime.retry import RetryPolicy
from actorflow.runtime.steps import Replay, Step, StepLog
from actorflow.runtime.streaming import stream_dispatch
from actorflow.updates import DispatchUpdate

__all__ = ["SupervisorCore", "SupervisorActor", "DispatchOutcome"]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class DispatchOutcome:
    """What the supervisor sends back: the result, and the error when the dispatch failed."""

    result: DispatchResult
    error: BaseException | None = None

    def __reduce__(self):
        # Flat values and one global reference (see DispatchResult.flat).
        return (_rebuild_outcome, (self.result.flat(), self.error))


def _rebuild_outcome(flat: tuple, error: BaseException | None) -> DispatchOutcome:
    return DispatchOutcome(rebuild_dispatch_result(*flat), error)


@dataclass(slots=True)
class _Paused:
    """An interrupted dispatch kept in memory (no journal) until it is resumed."""

    event: Event
    settings: OrchestrationConfig | None
    steps: dict[str, Step]
    step: str | None
    result: DispatchResult


class SupervisorCore:
    """Pattern execution over agent endpoints; wrapped as a Ray actor by `SupervisorActor`."""

    def __init__(
        self, config: AgentFlowConfig, agents: dict[str, AgentActors], callbacks: CallbackRegistry,
        flows: dict[str, FlowPlan] | None = None, traced: bool = False,
    ) -> None:
        self.config = config
        self.tracing = tracing.setup() if traced else None
        """This process's spans (actorflow/tracing.py); None when tracing is off."""
        self.settings = config.orchestration
        self.spec = mode_spec(self.settings.mode)
        self.retry = RetryPolicy.from_config(self.settings)
        self.callbacks = callbacks
        self._callbacks_version = 0
        self.metrics = Metrics({name: llm.model for name, llm in config.llm_agents().items()})
        self.endpoints: dict[str, AgentEndpoint] = {}
        self.flows = dict(flows or {})
        self.scope: dict[str, Any] = {}
        """What a top-level dispatch reaches: the agents by name and the nested flows."""
        for actors in agents.values():
            self.add_agent(actors)
        self.scope = scope_of(self.endpoints, self.flows)
        self.journal = None
        self._journal_io: ThreadPoolExecutor | None = None
        if url := config.runtime.journal:
            from actorflow.journal import open_journal

            self.journal = open_journal(url)
            # SQLite takes one writer at a time; a server takes several.
            threads = 1 if url.startswith("sqlite") else 4
            self._journal_io = ThreadPoolExecutor(threads, thread_name_prefix="actorflow-journal")
        self.paused: dict[str, _Paused] = {}
        self._resuming: set[str] = set()

    # -- management (called by the runner) -------------------------------------------------

    def ping(self) -> int:
        """The supervisor's process id (also proves it is alive)."""
        return os.getpid()

    def add_agent(self, actors: AgentActors) -> None:
        breaker = CircuitBreaker.from_config(self.settings.circuit_breaker)
        self.endpoints[actors.name] = AgentEndpoint(actors, breaker)
        self.scope = scope_of(self.endpoints, self.flows)

    def set_callbacks(self, callbacks: CallbackRegistry, version: int) -> None:
        """Take the runner's callbacks; an older snapshot arriving late is ignored."""
        if version > self._callbacks_version:
            self.callbacks, self._callbacks_version = callbacks, version

    async def agents(self) -> list[dict[str, Any]]:
        """One entry per configured or registered agent, with its live circuit state and the
        current process id and restart count of each replica (from Ray's actor table)."""
        processes = {
            name: await asyncio.to_thread(replica_processes, endpoint.handles, endpoint.pids)
            for name, endpoint in self.endpoints.items()
        }
        entries = []
        for name in dict.fromkeys([*self.config.agents, *self.endpoints]):
            endpoint = self.endpoints.get(name)
            cfg = endpoint.config if endpoint else self.config.agent(name)
            replicas = processes.get(name, [])
            restarts = [r.restarts for r in replicas]
            entries.append(
                {
                    "name": name,
                    "role": cfg.role,
                    "description": cfg.description,
                    "enabled": cfg.enabled,
                    "capabilities": list(cfg.capabilities),
                    "registered": endpoint is not None,
                    "replicas": len(replicas),
                    "pids": [r.pid for r in replicas],
                    "restarts": (endpoint.restarts if None in restarts else sum(restarts)) if endpoint else 0,
                    "in_flight": endpoint.in_flight if endpoint else 0,
                    "circuit": endpoint.breaker.state if endpoint else "closed",
                }
            )
        return entries

    def flush(self) -> None:
        """Hand the aggregated Ray metrics to Ray and export the spans still buffered (the runner
        calls it before removing this actor)."""
        self.metrics.flush()
        tracing.flush()

    def metrics_text(self) -> str:
        return self.metrics.render({name: e.breaker.state for name, e in self.endpoints.items()})

    # -- the dispatch ------------------------------------------------------------------------

    async def dispatch_stream(
        self, event: Event, settings: OrchestrationConfig | None = None, traceparent: str | None = None,
        replay: Replay | None = None,
    ):
        """`dispatch`, yielding `DispatchUpdate`s as things happen (see runtime/streaming.py);
        called with .options(num_returns="streaming")."""
        dispatch = self.dispatch
        if traceparent is not None or replay is not None:
            dispatch = functools.partial(self.dispatch, traceparent=traceparent, replay=replay)
        async for update in stream_dispatch(dispatch, event, settings):
            yield update

    async def dispatch(
        self,
        event: Event,
        settings: OrchestrationConfig | None = None,
        traceparent: str | None = None,
        *,
        sink: Callable[[DispatchUpdate], None] | None = None,
        replay: Replay | None = None,
    ) -> DispatchOutcome:
        """Run `event` through the pattern of `settings` (a per-event override the runner
        validated), else of the file; `sink` takes the updates of a streamed dispatch; `replay`
        holds the finished steps of a recovered or resumed dispatch. With tracing on, the
        dispatch is an `actorflow.dispatch` span, a child of `traceparent` (W3C) when the caller
        sent one."""
        override = settings
        spec, retry = self.spec, self.retry
        if settings is None:
            settings = self.settings
        else:
            spec, retry = mode_spec(settings.mode), RetryPolicy.from_config(settings)
        mode = settings.mode
        started = time.perf_counter()
        # The event is this actor's own unpickled copy; only a callback could change the state's
        # values in place here (agents get pickled copies), so only then is the state deep-copied.
        data = copy.deepcopy(dict(event.data)) if self.callbacks else dict(event.data)
        state = State(data, dict(event.metadata))
        tracer = self.tracing
        span = None if tracer is None else tracer.start_dispatch(event, mode, traceparent)
        inv = DispatchInvocation(
            event, settings, state, endpoints=self.scope, callbacks=self.callbacks, retry=retry,
            metrics=self.metrics, not_found=self.not_found, deadline=time.monotonic() + settings.timeout_seconds,
            started=started, sink=sink, trace=None if span is None else tracer.traceparent(span),
            steps=StepLog(replay, self._step_writer(event.id) if self.journal is not None else None),
        )
        outcome: PatternOutcome | None = None
        error: BaseException | None = None
        interrupt: Interrupt | None = None
        self.metrics.dispatch_started()
        try:
            async with asyncio.timeout(settings.timeout_seconds) as timer:
                self._check_agents(event, spec, settings)
                args = CallbackArgs(event, state, mode=mode)
                await self.callbacks.fire(Hook.BEFORE_EVENT_HANDLING, args)
                inv.latest = args.state
                outcome = await spec.run(inv, args.state)
                error = outcome.error
        except Interrupt as err:  # a handler asked for a person: not a failure
            interrupt = err
        except TimeoutError as err:
            error = self._timeout_error(event, inv, settings) if timer.expired() else err
        except Exception as err:
            error = err
        except BaseException:  # cancelled (a streaming consumer went away)
            self._cancelled(mode, started, span)
            raise

        # without a journal an interrupted dispatch's steps stay here, safe from the callbacks below
        paused = inv.steps.snapshot() if interrupt is not None and self.journal is None else None
        args = CallbackArgs(event, outcome.state if outcome else inv.latest, error=error, mode=mode)
        try:
            await self.callbacks.fire(Hook.AFTER_EVENT_HANDLING, args)
        except Exception as err:
            error = error or err
        except BaseException:
            self._cancelled(mode, started, span)
            raise
        iterations = [run.iteration for run in inv.runs if run.iteration is not None]
        result = DispatchResult(
            state=args.state,
            mode=mode,
            event_id=event.id,
            session_id=event.session_id,
            duration=time.perf_counter() - started,
            runs=inv.runs,
            failed_agents=list(dict.fromkeys(outcome.failed_agents)) if outcome else [],
            iterations=outcome.iterations if outcome else (max(iterations) if iterations else None),
            completion_reason=outcome.completion_reason if outcome else None,
            ok=error is None and interrupt is None,
            error=describe_error(error) if error is not None else None,
            interrupted=interrupt is not None,
            interrupt=interrupt.describe() if interrupt is not None else None,
        )
        if span is not None:
            result.trace_id = tracer.trace_id(span)
            result.state.set_meta("trace_id", result.trace_id)
            tracer.end(span, result.error)
        if self.journal is not None:
            result, error = await self._record_end(result, error, interrupt)
        elif interrupt is not None:
            self.paused[event.id] = _Paused(event, override, paused, interrupt.step, result)
        status = "interrupted" if interrupt is not None else "ok" if error is None else type(error).__name__
        self.metrics.dispatch_finished(mode, status, result.duration)
        for agent in {run.agent for run in inv.runs}:
            if (endpoint := self.endpoints.get(agent)) is not None:
                self.metrics.circuit(agent, endpoint.breaker.state)
        return DispatchOutcome(result, _portable(error))

    def _cancelled(self, mode: str, started: float, span: Any) -> None:
        self.metrics.dispatch_finished(mode, "cancelled", time.perf_counter() - started)
        if span is not None:
            self.tracing.end(span, "cancelled")

    # -- interrupts and the journal ----------------------------------------------------------

    async def resume(self, event_id: str, data: dict[str, Any] | None) -> DispatchOutcome | str:
        """Resume a dispatch interrupted in this actor's memory (no journal): its outcome, or
        "unknown" / "running" when there is no such interrupted dispatch here."""
        paused = self.paused.pop(event_id, None)
        if paused is None:
            return "running" if event_id in self._resuming else "unknown"
        self._resuming.add(event_id)
        try:
            return await self.dispatch(paused.event, paused.settings, replay=Replay(paused.steps, paused.step, data))
        finally:
            self._resuming.discard(event_id)

    def paused_results(self) -> dict[str, DispatchResult]:
        """The interrupted dispatches held in memory (no journal), by event id."""
        return {event_id: paused.result for event_id, paused in self.paused.items()}

    async def _journal_call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._journal_io, fn, *args)

    def _step_writer(self, event_id: str):
        async def write(key: str, run: Any, output: Any) -> None:
            await self._journal_call(
                self.journal.record_step, event_id, key, run.to_dict(), step_output_record(output)
            )

        return write

    async def _record_end(
        self, result: DispatchResult, error: BaseException | None, interrupt: Interrupt | None
    ) -> tuple[DispatchResult, BaseException | None]:
        """Record the dispatch's end in the journal. A result the journal refuses (a value that
        is not JSON) fails the dispatch, recorded without its state."""
        try:
            if interrupt is not None:
                await self._journal_call(self.journal.interrupt, result.event_id, result.to_dict(),
                                         {**interrupt.describe(), "step": interrupt.step})
            else:
                await self._journal_call(self.journal.finish, result.event_id, result_record(result, error))
            return result, error
        except ActorflowError as err:
            logger.warning("recording the result of %s: %s", result.event_id, describe_error(err))
            failed = replace(result, ok=False, error=describe_error(err), interrupted=False, interrupt=None)
            await self._journal_call(self.journal.finish, result.event_id,
                                     result_record(replace(failed, state=State()), err))
            return failed, err

    def _check_agents(self, event: Event, spec: ModeSpec, settings: OrchestrationConfig) -> None:
        """Every agent this dispatch will reach must be registered (fail before any runs)."""
        for agent in spec.reached(event, settings, list(self.scope)):
            if agent not in self.scope:
                raise self.not_found(agent)

    def not_found(self, agent: str) -> AgentNotFoundError:
        configured = set(self.config.agents)
        disabled = {name for name, cfg in self.config.agents.items() if not cfg.enabled}
        return agent_not_found(agent, list(self.scope), configured, disabled)

    def _timeout_error(self, event: Event, inv: DispatchInvocation, settings: OrchestrationConfig) -> DispatchTimeoutError:
        done = [run.agent for run in inv.runs if run.status == "ok"]
        cancelled = [run.agent for run in inv.runs if run.status == "cancelled"]
        return DispatchTimeoutError(
            f"dispatch of event {event.id} ({settings.mode}) did not finish within "
            f"timeout_seconds = {settings.timeout_seconds}; finished: {', '.join(done) or 'none'}; "
            f"cancelled: {', '.join(cancelled) or 'none'}"
        )


def scope_of(endpoints: dict[str, AgentEndpoint], flows: dict[str, FlowPlan], prefix: str = "") -> dict[str, Any]:
    """The agents a dispatch at one level reaches (local name → endpoint): the level's agents
    (top level: names without a flow prefix) and its nested flows as `FlowEndpoint`s."""
    scope: dict[str, Any] = {
        name[len(prefix):]: endpoint for name, endpoint in endpoints.items()
        if name.startswith(prefix) and "/" not in name[len(prefix):]
    }
    for name, plan in flows.items():
        scope[name] = FlowEndpoint(plan, scope_of(endpoints, plan.flows, f"{plan.name}/"))
    return scope


def agent_not_found(agent: str, registered: list[str], configured: set[str], disabled: set[str]) -> AgentNotFoundError:
    if agent in disabled:
        message = f"agent {agent!r} is disabled (enabled = false in [agents.{agent}])"
    elif agent in configured:
        message = (
            f"agent {agent!r} has no handler: register one with runner.register_agent({agent!r}, handler) "
            f'or set handler = "package.module:attribute" in [agents.{agent}]'
        )
    else:
        message = f"unknown agent {agent!r}; registered agents: {names(registered)}"
    return AgentNotFoundError(message, agent=agent, known=registered)


def _portable(error: BaseException | None) -> BaseException | None:
    """The error if it survives pickling (user exceptions may not), else an ActorflowError."""
    if error is None or isinstance(error, ActorflowError):
        return error
    try:
        cloudpickle.loads(cloudpickle.dumps(error))
        return error
    except Exception:
        return ActorflowError(describe_error(error))


SupervisorActor = ray.remote(max_restarts=0, max_task_retries=0, num_cpus=0)(SupervisorCore)
