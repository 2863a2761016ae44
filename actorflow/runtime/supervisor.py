"""The supervisor: an async Ray actor that runs the patterns over the agent actors.

It owns the pattern logic, a circuit breaker per agent, the hooks and the metrics. It calls
agent actors directly and awaits their ObjectRefs: nothing in it blocks its event loop, so it
handles many dispatches at once.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import ray
from ray import cloudpickle

from actorflow.config import AgentFlowConfig
from actorflow.events import DispatchResult, Event, State, describe_error
from actorflow.exceptions import ActorflowError, AgentNotFoundError, DispatchTimeoutError
from actorflow.hooks import CallbackArgs, CallbackRegistry, Hook
from actorflow.patterns import PatternContext, get_pattern
from actorflow.runtime.breaker import CircuitBreaker
from actorflow.runtime.calls import AgentCalls, agent_not_found
from actorflow.runtime.metrics import Metrics
from actorflow.runtime.pool import AgentPool
from actorflow.runtime.replicas import replica_processes
from actorflow.runtime.retry import RetryPolicy

__all__ = ["SupervisorCore", "SupervisorActor", "DispatchOutcome"]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class DispatchOutcome:
    """What the supervisor sends back: the result, and the error when the dispatch failed."""

    result: DispatchResult
    error: BaseException | None = None


class SupervisorCore:
    """Pattern execution over agent pools; wrapped as a Ray actor by `SupervisorActor`."""

    def __init__(self, config: AgentFlowConfig, pools: dict[str, AgentPool], callbacks: CallbackRegistry) -> None:
        self.config = config
        self.settings = config.orchestration
        self.pattern = get_pattern(self.settings.mode)
        self.retry = RetryPolicy.from_config(self.settings)
        self.callbacks = callbacks
        self.metrics = Metrics()
        self.pools: dict[str, AgentPool] = {}
        self.breakers: dict[str, CircuitBreaker] = {}
        for pool in pools.values():
            self.add_agent(pool)

    # -- management (called by the runner) -------------------------------------------------

    def ping(self) -> int:
        """The supervisor's process id (also proves it is alive)."""
        return os.getpid()

    def add_agent(self, pool: AgentPool) -> None:
        self.pools[pool.name] = pool
        self.breakers.setdefault(pool.name, CircuitBreaker.from_config(self.settings.circuit_breaker))

    def set_callbacks(self, callbacks: CallbackRegistry) -> None:
        self.callbacks = callbacks

    async def agents(self) -> list[dict[str, Any]]:
        """One entry per configured or registered agent, with its live circuit state and the
        current process id and restart count of each replica (from Ray's actor table)."""
        processes = {
            name: await asyncio.to_thread(replica_processes, pool.actors, pool.pids) for name, pool in self.pools.items()
        }
        entries = []
        for name in dict.fromkeys([*self.config.agents, *self.pools]):
            cfg = self.pools[name].config if name in self.pools else self.config.agent(name)
            pool = self.pools.get(name)
            breaker = self.breakers.get(name)
            replicas = processes.get(name, [])
            restarts = [r.restarts for r in replicas]
            entries.append(
                {
                    "name": name,
                    "role": cfg.role,
                    "description": cfg.description,
                    "enabled": cfg.enabled,
                    "capabilities": list(cfg.capabilities),
                    "registered": pool is not None,
                    "replicas": len(pool.actors) if pool else 0,
                    "pids": [r.pid for r in replicas],
                    "restarts": None if None in restarts else sum(restarts),
                    "in_flight": pool.in_flight if pool else 0,
                    "circuit": breaker.state if breaker else "closed",
                }
            )
        return entries

    def metrics_text(self) -> str:
        return self.metrics.render({name: b.state for name, b in self.breakers.items()})

    # -- the dispatch ------------------------------------------------------------------------

    async def dispatch(self, event: Event) -> DispatchOutcome:
        settings, mode = self.settings, self.settings.mode
        started = time.perf_counter()
        deadline = time.monotonic() + settings.timeout_seconds
        calls = AgentCalls(self, event, mode, deadline)
        state = State(copy.deepcopy(dict(event.data)), dict(event.metadata))
        ctx = PatternContext(event, settings, calls, list(self.pools), calls.record, state=state)
        error: BaseException | None = None
        self.metrics.in_flight += 1
        timer = asyncio.timeout(settings.timeout_seconds)
        try:
            async with timer:
                self._check_agents(event)
                args = CallbackArgs(event, state, mode=mode)
                await self.callbacks.fire(Hook.BEFORE_EVENT_HANDLING, args)
                ctx.state = state = args.state
                state = await self.pattern(ctx, state)
        except TimeoutError as err:
            error = self._timeout_error(event, calls) if timer.expired() else err
        except Exception as err:
            error = err
        finally:
            self.metrics.in_flight -= 1

        final = state if error is None else (ctx.state or state)
        args = CallbackArgs(event, final, error=error, mode=mode)
        try:
            await self.callbacks.fire(Hook.AFTER_EVENT_HANDLING, args)
        except Exception as err:
            error = error or err
        result = DispatchResult(
            state=args.state,
            mode=mode,
            event_id=event.id,
            session_id=event.session_id,
            duration=time.perf_counter() - started,
            runs=calls.runs,
            failed_agents=list(dict.fromkeys(ctx.failed_agents)),
            iterations=ctx.iterations,
            completion_reason=ctx.completion_reason,
            ok=error is None,
            error=describe_error(error) if error is not None else None,
        )
        self.metrics.dispatches[(mode, "ok" if error is None else type(error).__name__)] += 1
        return DispatchOutcome(result, _portable(error))

    def _check_agents(self, event: Event) -> None:
        """Every agent this dispatch will reach must be registered (fail before any runs)."""
        if self.settings.mode == "route":
            needed = [event.metadata.get("route") or event.target]
        else:
            needed = [event.target, *self.settings.named_agents()]
        for agent in needed:
            if agent not in self.pools:
                raise self.not_found(agent)

    def not_found(self, agent: str) -> AgentNotFoundError:
        configured = set(self.config.agents)
        disabled = {name for name, cfg in self.config.agents.items() if not cfg.enabled}
        return agent_not_found(agent, list(self.pools), configured, disabled)

    def _timeout_error(self, event: Event, calls: AgentCalls) -> DispatchTimeoutError:
        done = [run.agent for run in calls.runs if run.status == "ok"]
        cancelled = [run.agent for run in calls.runs if run.status == "cancelled"]
        return DispatchTimeoutError(
            f"dispatch of event {event.id} ({self.settings.mode}) did not finish within "
            f"timeout_seconds = {self.settings.timeout_seconds}; finished: {', '.join(done) or 'none'}; "
            f"cancelled: {', '.join(cancelled) or 'none'}"
        )

    # -- helpers used by AgentCalls -------------------------------------------------------------

    def may_restart(self, pool: AgentPool) -> bool:
        return pool.config.max_restarts != 0

    def abandon(self, pool: AgentPool, index: int, ref: ray.ObjectRef) -> None:
        """Stop an agent call nobody waits for any more, so it cannot wedge the mailbox.

        Async handlers are cancelled on the actor's event loop. A sync handler cannot be
        interrupted in its thread, so its actor is killed and Ray restarts it (`max_restarts`).
        """
        try:
            ray.cancel(ref)
            if not pool.is_async and self.may_restart(pool):
                ray.kill(pool.actors[index], no_restart=False)
                self.watch_restart(pool, index)
        except Exception as err:  # the actor may already be gone; nothing more to stop
            logger.debug("abandoning a call to %s: %s", pool.name, describe_error(err))

    def watch_restart(self, pool: AgentPool, index: int) -> None:
        """Note that a replica is restarting: calls to it wait until it is back (`until_ready`)."""
        if index not in pool.restarting:
            pool.restarting[index] = asyncio.ensure_future(_until_ready(pool.actors[index]))

    async def until_ready(self, pool: AgentPool, index: int) -> None:
        """Wait for a replica this supervisor killed to be back before calling it again, so
        its restart does not count against the next call's `timeout_seconds`."""
        restarting = pool.restarting.get(index)
        if restarting is not None:
            await asyncio.shield(restarting)
            if restarting.done():
                pool.restarting.pop(index, None)


async def _until_ready(actor: Any, attempts: int = 100) -> None:
    # A call sent before Ray notices the kill reaches the dying process and fails: ask again.
    for _ in range(attempts):
        try:
            await actor.ready.remote()
            return
        except ray.exceptions.RayActorError:
            await asyncio.sleep(0.1)


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
