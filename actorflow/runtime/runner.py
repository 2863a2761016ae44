"""The Runner: the public entry point that owns the Ray side of an actorflow system.

It starts (or joins) Ray, creates one agent actor per replica of every registered, enabled
agent and one supervisor actor, and turns dispatches into supervisor calls. It tracks the
dispatches in flight so `stop()` can drain them before removing the actors it made.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
import uuid
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayError

from actorflow.config import AgentFlowConfig, load_config
from actorflow.events import DispatchResult, Event, describe_error
from actorflow.exceptions import ActorflowError, DispatchTimeoutError
from actorflow.hooks import Callback, CallbackRegistry, Hook
from actorflow.runtime.agent_actor import AgentActor, is_async_handler
from actorflow.runtime.connect import connect
from actorflow.runtime.handlers import import_handler, resolve_handler
from actorflow.runtime.pool import AgentPool
from actorflow.runtime.supervisor import DispatchOutcome, SupervisorActor

__all__ = ["Runner"]

logger = logging.getLogger(__name__)

# Time the runner allows beyond the orchestration deadline before it gives up on the supervisor.
_GRACE_SECONDS = 10.0
# Most dispatches one supervisor handles at once (its actor max_concurrency).
_SUPERVISOR_CONCURRENCY = 1000
_READY_TIMEOUT = 120.0


class Runner:
    """Runs agentflow orchestrations on Ray. See DESIGN.md "Runner"."""

    def __init__(self, config: AgentFlowConfig | None = None, **overrides: Any) -> None:
        config = config or AgentFlowConfig()
        self._config = config.with_overrides(**overrides) if overrides else config
        self._handlers: dict[str, Any] = {}
        self._callbacks = CallbackRegistry()
        self._id = uuid.uuid4().hex[:8]
        self._lock = threading.RLock()
        self._status = "new"  # new → started → stopping → stopped
        self._owns_ray = False
        self._pools: dict[str, AgentPool] = {}
        self._supervisor: Any = None
        self._supervisor_pid: int | None = None
        self._supervisor_lost = False
        self._generation = 0
        self._in_flight: set[ray.ObjectRef] = set()

    @classmethod
    def from_config(cls, path: str | os.PathLike[str], *, env: str | None = None, **overrides: Any) -> Runner:
        """Load `path` (plus the ACTORFLOW_ENV / `env` layer); `overrides` win over the file."""
        return cls(load_config(path, env=env, overrides=overrides))

    # -- set-up --------------------------------------------------------------------------

    @property
    def config(self) -> AgentFlowConfig:
        return self._config

    @property
    def started(self) -> bool:
        return self._status == "started"

    def register_agent(self, name: str, handler: Any, **agent_options: Any) -> None:
        """Register a handler (function, Agent subclass or "module:attr") under `name`.

        `agent_options` are `[agents.NAME]` keys that override the file. After `start()` the
        agent's actors are created at once.
        """
        handler = resolve_handler(handler, agent=name)
        with self._lock:
            if name in self._handlers:
                raise ValueError(f"agent {name!r} is already registered")
            if agent_options:
                self._config = self._config.with_agent_options(name, **agent_options)
            self._handlers[name] = handler
            if self._status == "started" and self._config.agent(name).enabled:
                pool = self._create_pools({name: handler})[name]
                ray.get(self._supervisor.add_agent.remote(pool))
                self._pools[name] = pool

    def register_callback(self, hook: Hook | str, name: str, fn: Callback) -> None:
        """Register `fn(args: CallbackArgs) -> State | None` for `hook` under a unique name."""
        with self._lock:
            self._callbacks.register(hook, name, fn)
            if self._status == "started":
                ray.get(self._supervisor.set_callbacks.remote(self._callbacks))

    def start(self, *, log_to_driver: bool = True) -> Runner:
        """Start Ray if needed, the agent actors and the supervisor. Returns self."""
        with self._lock:
            if self._status == "started":
                return self
            if self._status != "new":
                raise ActorflowError("this runner has been stopped; create a new Runner to start again")
            handlers = self._all_handlers()
            self._connect_ray(log_to_driver)
            try:
                enabled = {n: h for n, h in handlers.items() if self._config.agent(n).enabled}
                self._pools.update(self._create_pools(enabled))
                self._supervisor = self._create_supervisor()
            except BaseException:
                self._teardown()
                raise
            self._status = "started"
            logger.info("actorflow runner %s started %d agents (%s mode)", self._id, len(self._pools), self.mode)
            return self

    @property
    def supervisor_pid(self) -> int | None:
        """Process id of the supervisor actor (None before start), for operators and fault drills."""
        return self._supervisor_pid

    @property
    def mode(self) -> str:
        return self._config.orchestration.mode

    def _all_handlers(self) -> dict[str, Any]:
        """Code-registered handlers, plus `handler = "module:attr"` from the config."""
        handlers = {
            name: import_handler(cfg.handler, agent=name)
            for name, cfg in self._config.agents.items()
            if cfg.handler and name not in self._handlers
        }
        handlers.update(self._handlers)
        return handlers

    def _connect_ray(self, log_to_driver: bool) -> None:
        # Joined or started here: this runner disconnects (or shuts the local instance down) on stop().
        self._owns_ray = connect(self._config.runtime, log_to_driver=log_to_driver) != "existing"

    def _create_pools(self, handlers: dict[str, Any]) -> dict[str, AgentPool]:
        """Start every replica of every agent at once, then wait until all have run `on_start`."""
        launched = {name: self._launch(name, handler) for name, handler in handlers.items()}
        pools = {}
        try:
            for name, actors in launched.items():
                pids = ray.get([actor.ready.remote() for actor in actors], timeout=_READY_TIMEOUT)
                pools[name] = AgentPool(name, self._config.agent(name), actors, is_async_handler(handlers[name]), pids)
        except (RayError, GetTimeoutError) as err:
            for actors in launched.values():
                for actor in actors:
                    _kill(actor)
            raise ActorflowError(f"agent {name!r} failed to start: {describe_error(_cause(err))}") from err
        return pools

    def _launch(self, name: str, handler: Any) -> list[Any]:
        cfg = self._config.agent(name)
        options: dict[str, Any] = {
            "max_restarts": cfg.max_restarts,
            "max_concurrency": cfg.max_concurrency,
            "max_pending_calls": cfg.mailbox_size,
        }
        if cfg.num_cpus is not None:
            options["num_cpus"] = cfg.num_cpus
        if cfg.num_gpus is not None:
            options["num_gpus"] = cfg.num_gpus
        if cfg.resources:
            options["resources"] = dict(cfg.resources)
        return [
            AgentActor.options(name=f"af-{self._id}-{name}-{replica}", **options).remote(name, handler, cfg.max_concurrency)
            for replica in range(cfg.replicas)
        ]

    def _create_supervisor(self) -> Any:
        self._generation += 1
        supervisor = SupervisorActor.options(
            name=f"af-{self._id}-supervisor-{self._generation}", max_concurrency=_SUPERVISOR_CONCURRENCY
        ).remote(self._config, self._pools, self._callbacks)
        self._supervisor_pid = ray.get(supervisor.ping.remote(), timeout=_READY_TIMEOUT)
        return supervisor

    # -- dispatching -------------------------------------------------------------------------

    def dispatch(self, event: Event) -> DispatchResult:
        """Run the orchestration for `event` and wait for it. Raises on failure (`err.result`)."""
        ref = self._submit(event)
        try:
            outcome = ray.get(ref, timeout=self._wait_limit())
        except BaseException as err:
            raise self._translate(err, event) from err
        finally:
            self._done(ref)
        return _unwrap(outcome)

    async def dispatch_async(self, event: Event) -> DispatchResult:
        """`dispatch` for asyncio callers: awaits without blocking the event loop."""
        ref = self._submit(event)
        try:
            outcome = await asyncio.wait_for(ref, self._wait_limit())
        except asyncio.TimeoutError as err:
            raise self._translate(GetTimeoutError(str(err)), event) from err
        except BaseException as err:
            raise self._translate(err, event) from err
        finally:
            self._done(ref)
        return _unwrap(outcome)

    def emit(self, event: Event) -> concurrent.futures.Future[DispatchResult]:
        """Start a dispatch without waiting; the future resolves to the DispatchResult (or raises)."""
        ref = self._submit(event)
        future: concurrent.futures.Future[DispatchResult] = concurrent.futures.Future()

        def settle(ray_future: concurrent.futures.Future) -> None:
            self._done(ref)
            try:
                future.set_result(_unwrap(ray_future.result()))
            except BaseException as err:
                future.set_exception(err if isinstance(err, ActorflowError) else self._translate(err, event))

        ref.future().add_done_callback(settle)
        return future

    def agents(self) -> list[dict[str, Any]]:
        """Every configured or registered agent: name, role, enabled, circuit state, replicas, …"""
        return self._ask("agents")

    def metrics_text(self) -> str:
        """The supervisor's metrics in Prometheus text format."""
        return self._ask("metrics_text")

    def _ask(self, method: str) -> Any:
        """A management call to the supervisor, replacing it first if it died."""
        with self._lock:
            self._require_started()
            if self._supervisor_lost:
                self._recover_supervisor()
            supervisor = self._supervisor
        try:
            return ray.get(getattr(supervisor, method).remote(), timeout=_GRACE_SECONDS)
        except RayActorError as err:
            self._supervisor_lost = True
            raise ActorflowError(f"the supervisor actor died ({describe_error(err).splitlines()[0]}); ask again") from err

    def _require_started(self) -> None:
        if self._status == "new":
            raise ActorflowError("the runner is not started: call runner.start() (or use `with runner:`) first")
        if self._status != "started":
            raise ActorflowError("the runner is stopped (or stopping) and accepts no new dispatches")

    def _submit(self, event: Event) -> ray.ObjectRef:
        if not isinstance(event, Event):
            raise TypeError(f"dispatch takes an actorflow.Event, got {type(event).__name__}")
        with self._lock:
            self._require_started()
            if self._supervisor_lost:
                self._recover_supervisor()
            ref = self._supervisor.dispatch.remote(event)
            self._in_flight.add(ref)
        return ref

    def _done(self, ref: ray.ObjectRef) -> None:
        with self._lock:
            self._in_flight.discard(ref)

    def _wait_limit(self) -> float:
        return self._config.orchestration.timeout_seconds + _GRACE_SECONDS

    def _translate(self, err: BaseException, event: Event) -> BaseException:
        """Ray's failures of the supervisor call, as actorflow errors."""
        if isinstance(err, ActorflowError):
            return err
        if isinstance(err, (GetTimeoutError, TimeoutError)):
            return DispatchTimeoutError(
                f"no answer from the supervisor for event {event.id} within {self._wait_limit():.0f}s"
            )
        if isinstance(err, RayActorError):
            # Recovery happens on the next submit, in a caller's thread: this may run in one
            # of Ray's callback threads, which must not make blocking Ray calls.
            self._supervisor_lost = True
            return ActorflowError(
                f"the supervisor actor died while handling event {event.id} ({describe_error(err).splitlines()[0]}); "
                "the runner starts a new supervisor for the next dispatch: dispatch the event again"
            )
        if isinstance(err, RayError):
            return ActorflowError(f"dispatch of event {event.id} failed inside the runtime: {describe_error(_cause(err))}")
        return err

    def _recover_supervisor(self) -> None:
        """Replace a supervisor that died (its breakers and metrics start afresh). Holds the lock."""
        self._supervisor_lost = False
        try:
            ray.get(self._supervisor.ping.remote(), timeout=5)
            return  # a call failed with it, but it answers: keep it
        except (RayError, GetTimeoutError):
            pass
        logger.warning("actorflow runner %s: the supervisor died; starting a new one", self._id)
        _kill(self._supervisor)
        self._supervisor = self._create_supervisor()

    # -- stopping ------------------------------------------------------------------------

    def stop(self, timeout: float | None = None) -> None:
        """Drain in-flight dispatches (bounded by their deadline), then remove the actors.

        Dispatches accepted before `stop()` finish normally; new ones are refused.
        """
        with self._lock:
            if self._status != "started":
                if self._status == "new":
                    self._status = "stopped"
                return
            self._status = "stopping"
            pending = list(self._in_flight)
        if pending:
            limit = self._wait_limit() if timeout is None else timeout
            ray.wait(pending, num_returns=len(pending), timeout=limit)
        # Not under the lock: Ray's callback threads settling emit() futures take it (`_done`).
        self._teardown()
        self._status = "stopped"

    def _teardown(self) -> None:
        stops = [actor.stop.remote() for pool in self._pools.values() for actor in pool.actors]
        try:
            ray.wait(stops, num_returns=len(stops), timeout=_GRACE_SECONDS)
        except RayError:
            pass
        for pool in self._pools.values():
            for actor in pool.actors:
                _kill(actor)
        if self._supervisor is not None:
            _kill(self._supervisor)
        self._pools.clear()
        self._supervisor = None
        if self._owns_ray and ray.is_initialized():
            ray.shutdown()
        self._owns_ray = False

    def __enter__(self) -> Runner:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"Runner(id={self._id!r}, mode={self.mode!r}, status={self._status!r}, agents={sorted(self._handlers)})"


def _unwrap(outcome: DispatchOutcome) -> DispatchResult:
    if outcome.error is None:
        return outcome.result
    error = outcome.error
    try:
        error.result = outcome.result  # type: ignore[attr-defined]
    except AttributeError:
        pass
    raise error


def _cause(err: BaseException) -> BaseException:
    return getattr(err, "cause", None) or err


def _kill(actor: Any) -> None:
    try:
        ray.kill(actor, no_restart=True)
    except (RayError, ValueError):
        pass
