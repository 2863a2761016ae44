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
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayError

from actorflow import tracing
from actorflow.config import AgentConfig, AgentFlowConfig, OrchestrationConfig, load_config
from actorflow.events import DispatchResult, Event, describe_error
from actorflow.exceptions import ActorflowError, DispatchTimeoutError
from actorflow.hooks import Callback, CallbackRegistry, Hook
from actorflow.runtime.agent_actor import AgentActor, is_async_handler
from actorflow.llm.agent import llm_handlers
from actorflow.runtime.connect import connect
from actorflow.runtime.endpoint import AgentActors
from actorflow.runtime.flows import flow_agents, flow_plans
from actorflow.runtime.journaled import JournaledDispatches, settle as _settle
from actorflow.runtime.paused import PausedDispatches
from actorflow.runtime.overrides import SettingsResolver
from actorflow.runtime.handlers import agent_concurrency, import_handler, resolve_handler
from actorflow.runtime.limits import SUPERVISOR_IN_FLIGHT
from actorflow.runtime.placement import scheduling_options, supervisor_options
from actorflow.runtime.supervisors import merge_agents, merge_metrics, supervisor_slot
from actorflow.runtime.streaming import iterate, iterate_async
from actorflow.runtime.steps import Replay
from actorflow.runtime.supervisor import DispatchOutcome, SupervisorActor
from actorflow.updates import DispatchUpdate

__all__ = ["Runner"]

logger = logging.getLogger(__name__)

# Time the runner allows beyond the orchestration deadline before it gives up on the supervisor.
_GRACE_SECONDS = 10.0
_READY_TIMEOUT = 120.0
_STOPPED_EARLY = "the runner stopped before this dispatch finished (stop() gave up draining it)"
_RUNTIME_OVERRIDES = ("journal", "journal_lease_seconds")
"""`[runtime]` keys the Runner's keywords override (the others are orchestration overrides)."""


class Runner:
    """Runs agentflow orchestrations on Ray. See DESIGN.md "Runner"."""

    def __init__(self, config: AgentFlowConfig | None = None, **overrides: Any) -> None:
        config = config or AgentFlowConfig()
        runtime = {key: overrides.pop(key) for key in _RUNTIME_OVERRIDES if key in overrides}
        runtime = {key: value for key, value in runtime.items() if value is not None}
        if runtime:  # e.g. Runner(config, journal="sqlite:///journal.db")
            config = config.with_runtime_options(**runtime)
        self._config = config.with_overrides(**overrides) if overrides else config
        self._handlers: dict[str, Any] = {}
        self._callbacks = CallbackRegistry()
        self._id = uuid.uuid4().hex[:8]
        # Guards the fields below for short moments only: never held across a blocking Ray call
        # (Ray's callback threads take it to settle emit() futures).
        self._lock = threading.Lock()
        self._status = "new"  # new → started → stopping → stopped
        self._owns_ray = False
        self._pools: dict[str, AgentActors] = {}
        # One entry per supervisor slot ([runtime] supervisors); see runtime/supervisors.py.
        self._supervisors: list[Any] = []
        self._supervisor_pids: list[int | None] = []
        self._lost: set[int] = set()  # slots whose supervisor a call saw die
        self._recoveries: dict[int, concurrent.futures.Future] = {}
        self._callbacks_version = 0
        self._emitted: set[concurrent.futures.Future] = set()
        self._generation = 0
        self._in_flight: dict[ray.ObjectRef, float] = {}  # ref → how long stop() may wait for it
        self._llm_info: dict[str, dict[str, Any]] = {}  # LLM agent → provider, model, base_url
        self._overrides = SettingsResolver()
        self._flows: dict[str, AgentFlowConfig] = {}  # nested flows registered in code
        self._sub_agents: dict[str, tuple[AgentConfig, str | None, AgentFlowConfig]] = {}
        self._journaled: JournaledDispatches | None = None  # with [runtime] journal, from start()
        # Tracing (actorflow/tracing.py), decided at start(): on or off for every actor this
        # runner starts, and the driver's OTEL_* variables each of them gets (runtime_env).
        self._traced = False
        self._actor_env: dict[str, Any] = {}

    @classmethod
    def from_config(cls, path: str | os.PathLike[str], *, env: str | None = None, **overrides: Any) -> Runner:
        """Load `path` (plus the ACTORFLOW_ENV / `env` layer); `overrides` win over the file."""
        runtime = {key: overrides.pop(key) for key in _RUNTIME_OVERRIDES if key in overrides}
        return cls(load_config(path, env=env, overrides=overrides), **runtime)

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
        if isinstance(handler, AgentFlowConfig):  # a nested flow (runtime/flows.py)
            return self._register_flow(name, handler)
        handler = resolve_handler(handler, agent=name)
        with self._lock:
            if name in self._handlers:
                raise ValueError(f"agent {name!r} is already registered")
            if name in self._llm_info:
                raise ValueError(f"agent {name!r} is already running as an LLM agent (the file gives it no "
                                 "handler); register its code handler before start()")
            if agent_options:
                self._config = self._config.with_agent_options(name, **agent_options)
            self._handlers[name] = handler
            start_now = self._status == "started" and self._config.agent(name).enabled
        if not start_now:
            return
        actors = self._create_actors({name: handler})[name]
        with self._lock:
            running = self._status == "started"
            if running:
                self._pools[name] = actors  # from here on, teardown and a new supervisor know them
        if not running:
            _kill_all([actors])
            raise ActorflowError(f"the runner stopped while agent {name!r} was starting")
        self._tell_supervisor(lambda supervisor: supervisor.add_agent.remote(actors))

    def _register_flow(self, name: str, flow: AgentFlowConfig) -> None:
        with self._lock:
            if self._status != "new":
                raise ActorflowError(f"register the nested flow {name!r} before start()")
            if name in self._handlers or name in self._flows:
                raise ValueError(f"agent {name!r} is already registered")
            self._flows[name] = flow

    def _nested_flows(self) -> dict[str, AgentFlowConfig]:
        return {**self._config.flows, **self._flows}

    def _agent_config(self, name: str) -> AgentConfig:
        """`[agents.NAME]` of a top-level agent, or of a nested flow's agent ("NAME/agent")."""
        nested = self._sub_agents.get(name)
        return nested[0] if nested else self._config.agent(name)

    def register_callback(self, hook: Hook | str, name: str, fn: Callback) -> None:
        """Register `fn(args: CallbackArgs) -> State | None` for `hook` under a unique name."""
        with self._lock:
            self._callbacks.register(hook, name, fn)
            self._callbacks_version += 1
            snapshot, version = self._callbacks.copy(), self._callbacks_version
            started = self._status == "started"
        if started:
            self._tell_supervisor(lambda supervisor: supervisor.set_callbacks.remote(snapshot, version))

    def start(self, *, log_to_driver: bool = True) -> Runner:
        """Start Ray if needed, the agent actors and the supervisor. Returns self."""
        with self._lock:
            if self._status == "started":
                return self
            if self._status != "new":
                raise ActorflowError(f"this runner is {self._status}; create a new Runner to start again")
            self._status = "starting"
            handlers = self._all_handlers()
        journal = None
        try:
            journal = self._open_journal()  # a bad journal fails here, before anything starts
            self._traced = tracing.requested(self._config.observability.tracing)
            if self._traced:
                tracing.require_extra()  # a clear ConfigError here, not a failed actor later
            otel = tracing.otel_env() if self._traced else {}  # off: actors start on Ray's prestarted workers
            self._actor_env = {"runtime_env": {"env_vars": otel}} if otel else {}
            self._connect_ray(log_to_driver)
        except BaseException:
            if journal is not None:
                journal.close()
            self._status = "new"
            raise
        try:
            enabled = {n: h for n, h in handlers.items() if self._config.agent(n).enabled}
            self._pools.update(self._create_actors(enabled))
            self._pools.update(self._create_actors(self._flow_handlers()))
            self._create_supervisors()
        except BaseException:
            self._teardown()
            if journal is not None:
                journal.close()
            self._status = "new"
            raise
        if journal is not None:  # in place before any dispatch can see the runner started
            self._journaled = JournaledDispatches(self, journal, self._config.runtime.journal_lease_seconds)
        with self._lock:
            self._status = "started"
        if self._journaled is not None:  # recovers the journal's unfinished dispatches, in the background
            self._journaled.start()
        logger.info("actorflow runner %s started %d agents (%s mode)", self._id, len(self._pools), self.mode)
        return self

    def _open_journal(self) -> Any:
        """The journal, or None. A relative SQLite path is made absolute here first (against
        this process's current directory), so the supervisors open the same file."""
        url = self._config.runtime.journal
        if not url:
            return None
        from actorflow.journal import absolute_url, open_journal

        if (absolute := absolute_url(url)) != url:
            with self._lock:
                self._config = self._config.with_runtime_options(journal=absolute)
        return open_journal(absolute)

    @property
    def supervisor_pid(self) -> int | None:
        """Process id of the (first) supervisor actor (None before start), for operators and fault drills."""
        return self._supervisor_pids[0] if self._supervisor_pids else None

    @property
    def supervisor_pids(self) -> list[int | None]:
        """Process id of each supervisor actor (`[runtime] supervisors`), in slot order."""
        return list(self._supervisor_pids)

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
        llm = llm_handlers(self._config, skip={**handlers, **self._nested_flows()})  # agents with a model and no code
        self._llm_info = {name: agent.settings.describe() for name, agent in llm.items()}
        return {**handlers, **llm}

    def _flow_handlers(self) -> dict[str, Any]:
        """Handlers of the nested flows' agents, by qualified name ("NAME/agent")."""
        self._sub_agents = flow_agents(flow_plans(self._nested_flows()))
        handlers = {}
        for name, (cfg, spec, flow) in self._sub_agents.items():
            if not cfg.enabled:
                continue
            local = name.rsplit("/", 1)[-1]
            if spec:
                handlers[name] = import_handler(spec, agent=name)
            elif (llm := llm_handlers(flow, skip=set(flow.agents) - {local}).get(local)) is not None:
                handlers[name] = llm
        return handlers

    def _connect_ray(self, log_to_driver: bool) -> None:
        # Joined or started here: this runner disconnects (or shuts the local instance down) on stop().
        self._owns_ray = connect(self._config.runtime, log_to_driver=log_to_driver) != "existing"

    def _create_actors(self, handlers: dict[str, Any]) -> dict[str, AgentActors]:
        """Start every replica of every agent at once, then wait until all have run `on_start`."""
        launched = {name: self._launch(name, handler) for name, handler in handlers.items()}
        created = {}
        try:
            for name, handles in launched.items():
                pids = ray.get([handle.ready.remote() for handle in handles], timeout=_READY_TIMEOUT)
                config = self._agent_config(name)
                created[name] = AgentActors(
                    name, config, handles, pids, is_async_handler(handlers[name]),
                    agent_concurrency(config.max_concurrency, handlers[name]),
                    streams_tokens=getattr(handlers[name], "streams_tokens", False), traced=self._traced,
                )
        except (RayError, GetTimeoutError) as err:
            for handles in launched.values():
                for handle in handles:
                    _kill(handle)
            raise ActorflowError(f"agent {name!r} failed to start: {describe_error(_cause(err))}") from err
        return created

    def _launch(self, name: str, handler: Any) -> list[Any]:
        cfg = self._agent_config(name)
        concurrency = agent_concurrency(cfg.max_concurrency, handler)
        options: dict[str, Any] = {
            "max_restarts": cfg.max_restarts,
            "max_concurrency": concurrency,
            "max_pending_calls": cfg.mailbox_size,
        }
        if cfg.num_cpus is not None:
            options["num_cpus"] = cfg.num_cpus
        if cfg.num_gpus is not None:
            options["num_gpus"] = cfg.num_gpus
        if cfg.resources:
            options["resources"] = dict(cfg.resources)
        options.update(scheduling_options(cfg))
        options.update(self._actor_env)
        return [
            AgentActor.options(name=f"af-{self._id}-{name.replace('/', '.')}-{replica}", **options).remote(
                name, handler, concurrency, self._traced)
            for replica in range(cfg.replicas)
        ]

    def _create_supervisors(self) -> None:
        count = self._config.runtime.supervisors
        self._supervisor_pids = [None] * count
        self._supervisors = [self._launch_supervisor(slot) for slot in range(count)]
        self._supervisor_pids = ray.get([s.ping.remote() for s in self._supervisors], timeout=_READY_TIMEOUT)

    def _launch_supervisor(self, slot: int) -> Any:
        with self._lock:
            self._generation += 1
            pools, callbacks, generation = dict(self._pools), self._callbacks.copy(), self._generation
            flows = flow_plans(self._nested_flows()) or None
        return SupervisorActor.options(
            name=f"af-{self._id}-supervisor-{slot}-{generation}", max_concurrency=SUPERVISOR_IN_FLIGHT,
            **supervisor_options(self._config.runtime.supervisors), **self._actor_env,
        ).remote(self._config, pools, callbacks, flows=flows, traced=self._traced)

    def _create_supervisor(self, slot: int) -> Any:
        supervisor = self._launch_supervisor(slot)
        self._supervisor_pids[slot] = ray.get(supervisor.ping.remote(), timeout=_READY_TIMEOUT)
        return supervisor

    def _slot(self, event: Event) -> int:
        return supervisor_slot(event.session_id, self._config.runtime.supervisors)

    # -- dispatching -------------------------------------------------------------------------

    def dispatch(self, event: Event, /, *, traceparent: str | None = None, **overrides: Any) -> DispatchResult:
        """Run the orchestration for `event` and wait for it. Raises on failure (`err.result`).

        `overrides` (the keywords of `from_config`) change the orchestration of this event only.
        `traceparent` (a W3C trace context, e.g. an HTTP request's header): with tracing on, the
        dispatch span is its child."""
        settings = self._settings_for(event, overrides)
        if self._journaled is not None:
            future, _ = self._journaled.submit(event, settings, traceparent)
            return _unwrap(self._outcome(future, event, self._wait_limit(settings)))
        ref = self._submit(event, settings=settings, traceparent=traceparent)
        try:
            outcome = ray.get(ref, timeout=self._wait_limit(settings))
        except BaseException as err:
            raise self._translate(err, event) from err
        finally:
            self._done(ref)
        return _unwrap(outcome)

    async def dispatch_async(self, event: Event, /, *, traceparent: str | None = None, **overrides: Any) -> DispatchResult:
        """`dispatch` for asyncio callers: awaits without blocking the event loop."""
        settings = self._settings_for(event, overrides)
        if self._journaled is not None:
            future, _ = await asyncio.to_thread(self._journaled.submit, event, settings, traceparent)
            try:
                outcome = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), self._wait_limit(settings))
            except asyncio.TimeoutError as err:
                raise self._translate(GetTimeoutError(str(err)), event) from err
            return _unwrap(outcome)
        ref = self._submit(event, settings=settings, traceparent=traceparent)
        try:
            async with asyncio.timeout(self._wait_limit(settings)):  # no extra task, unlike wait_for
                outcome = await ref
        except TimeoutError as err:
            raise self._translate(GetTimeoutError(str(err)), event) from err
        except BaseException as err:
            raise self._translate(err, event) from err
        finally:
            self._done(ref)
        return _unwrap(outcome)

    def emit(
        self, event: Event, /, *, traceparent: str | None = None, **overrides: Any
    ) -> concurrent.futures.Future[DispatchResult]:
        """Start a dispatch without waiting; the future resolves to the DispatchResult (or raises).
        An invalid override raises `ConfigError` here, before anything runs."""
        future: concurrent.futures.Future[DispatchResult] = concurrent.futures.Future()
        settings = self._settings_for(event, overrides)
        if self._journaled is not None:
            outcome, _ = self._journaled.submit(event, settings, traceparent)
            outcome.add_done_callback(lambda done: _settle_unwrapped(future, done))
            return future
        ref = self._submit(event, future, settings=settings, traceparent=traceparent)

        def settle(ray_future: concurrent.futures.Future) -> None:
            self._done(ref, future)
            try:
                _settle(future, result=_unwrap(ray_future.result()))
            except BaseException as err:
                _settle(future, error=err if isinstance(err, ActorflowError) else self._translate(err, event))

        ref.future().add_done_callback(settle)
        return future

    # -- streaming (DESIGN "Streaming a dispatch"; transport: runtime/streaming.py) -----------

    def stream(self, event: Event, /, *, traceparent: str | None = None, **overrides: Any) -> Iterator[DispatchUpdate]:
        """Run the orchestration for `event`, yielding `DispatchUpdate`s as things happen; the
        last is `dispatch_finished` (with the result, also on failure). Stopping early cancels."""
        if self._journaled is not None:
            return self._journaled.stream(event, self._settings_for(event, overrides), traceparent)
        generator = self._submit_stream(event, overrides, traceparent)
        return iterate(generator, lambda: self._done(generator.completed()))

    def stream_async(
        self, event: Event, /, *, traceparent: str | None = None, **overrides: Any
    ) -> AsyncIterator[DispatchUpdate]:
        """`stream` for asyncio callers: `async for update in runner.stream_async(event)`."""
        if self._journaled is not None:
            return self._journaled.stream_async(event, self._settings_for(event, overrides), traceparent)
        generator = self._submit_stream(event, overrides, traceparent)
        return iterate_async(generator, lambda: self._done(generator.completed()))

    def _submit_stream(self, event: Event, overrides: dict[str, Any], traceparent: str | None = None) -> Any:
        return self._submit_stream_to(event, self._settings_for(event, overrides), traceparent)

    def _submit_stream_to(
        self, event: Event, settings: OrchestrationConfig | None, traceparent: str | None = None,
        replay: Replay | None = None,
    ) -> Any:
        supervisor = self._live_supervisor(self._slot(event))
        args = (event, settings, traceparent) if traceparent is not None and self._traced else (event, settings)
        if replay is not None:
            args = (event, settings, traceparent if self._traced else None, replay)
        with self._lock:
            self._require_started()
            generator = supervisor.dispatch_stream.options(num_returns="streaming").remote(*args)
            self._in_flight[generator.completed()] = self._wait_limit(settings)
        return generator

    def _outcome(self, future: concurrent.futures.Future, event: Event, limit: float) -> DispatchOutcome:
        try:
            return future.result(timeout=limit)
        except concurrent.futures.TimeoutError as err:
            raise self._translate(GetTimeoutError(str(err)), event) from err

    # -- durable dispatches and interrupts (DESIGN "Durable dispatches (journal) and interrupts") --

    def result(self, event_id: str) -> DispatchResult | None:
        """The recorded result of the dispatch of `event_id` (finished or interrupted), else None.
        Without a journal only interrupted dispatches are known (in memory)."""
        return self._durable().result(event_id)

    def pending(self) -> list[str]:
        """Event ids of the unfinished dispatches: running (in any runner on the journal) or
        interrupted. Without a journal: the interrupted ones this runner holds in memory."""
        return self._durable().pending()

    def wait(self, event_id: str, timeout: float | None = None) -> DispatchResult:
        """Wait for the dispatch of `event_id` to end (here, or in another runner on the journal)
        and return its result like `dispatch` (a failed one raises, with `err.result`; an
        interrupted one returns). `DispatchTimeoutError` after `timeout` seconds;
        `DispatchNotFoundError` for an unknown id. Without a journal: interrupted ones only."""
        return _unwrap(self._durable().wait(event_id, timeout))

    def resume(self, event_id: str, data: dict[str, Any] | None = None) -> DispatchResult:
        """Run the interrupted agent of dispatch `event_id` again with `data` merged into its
        input state's data, and continue the pattern (every finished run is replayed, not rerun).
        Returns the DispatchResult like `dispatch` (it may be interrupted again).
        `DispatchNotFoundError` for an unknown id; `DispatchNotResumableError` when it finished
        or is running."""
        if data is not None and not isinstance(data, dict):
            raise TypeError(f"resume data must be a dict, got {type(data).__name__}")
        return _unwrap(self._durable().resume(event_id, data or {}))

    def _durable(self) -> JournaledDispatches | PausedDispatches:
        """Where interrupted (and, with a journal, all) dispatches are known."""
        self._require_started()
        return self._journaled or PausedDispatches(self)

    def agents(self) -> list[dict[str, Any]]:
        """Every configured or registered agent: name, role, enabled, circuit state, replicas, …"""
        return [{**entry, "llm": self._llm_info.get(entry["name"])} for entry in merge_agents(self._ask("agents"))]

    def metrics_text(self) -> str:
        """The supervisors' metrics in Prometheus text format (a `supervisor` label with several)."""
        return merge_metrics(self._ask("metrics_text"))

    def _ask(self, method: str) -> list[Any]:
        """A management call to every supervisor, replacing first any that died."""
        supervisors = [self._live_supervisor(slot) for slot in range(self._config.runtime.supervisors)]
        try:
            return ray.get([getattr(s, method).remote() for s in supervisors], timeout=_GRACE_SECONDS)
        except RayActorError as err:
            self._lost.update(range(len(supervisors)))  # the live ones are kept: see _replace_supervisor
            raise ActorflowError(f"a supervisor actor died ({describe_error(err).splitlines()[0]}); ask again") from err

    def _tell_supervisor(self, call: Callable[[Any], ray.ObjectRef]) -> None:
        """Tell every supervisor about a change; a dead one is replaced later, knowing it already."""
        for slot in range(self._config.runtime.supervisors):
            try:
                ray.get(call(self._live_supervisor(slot)), timeout=_GRACE_SECONDS)
            except (RayActorError, GetTimeoutError):
                self._lost.add(slot)

    def _require_started(self) -> None:
        if self._status in ("new", "starting"):
            raise ActorflowError("the runner is not started: call runner.start() (or use `with runner:`) first")
        if self._status != "started":
            raise ActorflowError("the runner is stopped (or stopping) and accepts no new dispatches")

    def _settings_for(self, event: Event, overrides: dict[str, Any]) -> OrchestrationConfig | None:
        """The validated orchestration of this event (keyword overrides, then metadata
        `orchestration_override`), or None for the config's. Raises ConfigError."""
        if not isinstance(event, Event):
            raise TypeError(f"dispatch takes an actorflow.Event, got {type(event).__name__}")
        return self._overrides.settings_for(self._config, event, overrides)

    def _submit(
        self, event: Event, future: concurrent.futures.Future | None = None,
        settings: OrchestrationConfig | None = None, traceparent: str | None = None, replay: Replay | None = None,
    ) -> ray.ObjectRef:
        if not isinstance(event, Event):
            raise TypeError(f"dispatch takes an actorflow.Event, got {type(event).__name__}")
        supervisor = self._live_supervisor(self._slot(event))
        with self._lock:
            self._require_started()  # stop() may have begun meanwhile: what is admitted here is drained
            if replay is not None:
                ref = supervisor.dispatch.remote(event, settings, traceparent if self._traced else None, replay=replay)
            elif traceparent is not None and self._traced:  # else the message stays as it was
                ref = supervisor.dispatch.remote(event, settings, traceparent)
            elif settings is None:
                ref = supervisor.dispatch.remote(event)
            else:
                ref = supervisor.dispatch.remote(event, settings)
            self._in_flight[ref] = self._wait_limit(settings)
            if future is not None:
                self._emitted.add(future)
        return ref

    def _done(self, ref: ray.ObjectRef, future: concurrent.futures.Future | None = None) -> None:
        with self._lock:
            self._in_flight.pop(ref, None)
            self._emitted.discard(future)

    def _wait_limit(self, settings: OrchestrationConfig | None = None) -> float:
        return (settings or self._config.orchestration).timeout_seconds + _GRACE_SECONDS

    def _translate(self, err: BaseException, event: Event) -> BaseException:
        """Ray's failures of the supervisor call, as actorflow errors."""
        if isinstance(err, ActorflowError):
            return err
        if isinstance(err, (GetTimeoutError, TimeoutError)):
            return DispatchTimeoutError(
                f"no answer from the supervisor for event {event.id} within {self._wait_limit():.0f}s"
            )
        if isinstance(err, RayActorError) and self._status in ("stopping", "stopped"):
            return ActorflowError(_STOPPED_EARLY)
        if isinstance(err, RayActorError):
            # Recovery happens on the next submit, in a caller's thread: this may run in one
            # of Ray's callback threads, which must not make blocking Ray calls.
            self._lost.add(self._slot(event))
            return ActorflowError(
                f"the supervisor actor died while handling event {event.id} ({describe_error(err).splitlines()[0]}); "
                "the runner starts a new supervisor for the next dispatch: dispatch the event again"
            )
        if isinstance(err, RayError):
            return ActorflowError(f"dispatch of event {event.id} failed inside the runtime: {describe_error(_cause(err))}")
        return err

    def _live_supervisor(self, slot: int = 0) -> Any:
        """The supervisor of `slot`; one that died is replaced first (by one caller, the others wait)."""
        with self._lock:
            self._require_started()
            if slot not in self._lost:
                return self._supervisors[slot]
            leader = slot not in self._recoveries
            if leader:
                self._recoveries[slot] = concurrent.futures.Future()
            recovery = self._recoveries[slot]
        if leader:
            try:
                supervisor = self._replace_supervisor(slot)
            except BaseException as err:
                with self._lock:
                    del self._recoveries[slot]
                recovery.set_exception(err)
                raise
            with self._lock:
                self._supervisors[slot] = supervisor
                self._lost.discard(slot)
                del self._recoveries[slot]
            recovery.set_result(supervisor)
        return recovery.result(timeout=_READY_TIMEOUT)

    def _replace_supervisor(self, slot: int) -> Any:
        """A new supervisor over the same agent actors (breakers and metrics start afresh),
        unless the old one still answers."""
        old = self._supervisors[slot]
        try:
            ray.get(old.ping.remote(), timeout=5)
            return old  # a call failed with it, but it answers: keep it
        except (RayError, GetTimeoutError):
            pass
        logger.warning("actorflow runner %s: supervisor %d died; starting a new one", self._id, slot)
        _kill(old)
        return self._create_supervisor(slot)

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
            pending, longest = list(self._in_flight), max(self._in_flight.values(), default=0.0)
        if pending:
            limit = longest if timeout is None else timeout  # a per-event override may allow longer
            ray.wait(pending, num_returns=len(pending), timeout=limit)
        self._teardown()
        if self._journaled is not None:  # after the drain: its leases are released only now
            self._journaled.stop()
        with self._lock:
            self._status = "stopped"
            unsettled, self._emitted = list(self._emitted), set()
        for future in unsettled:  # pykka's rule: teardown fails every request still waiting
            _settle(future, error=ActorflowError(_STOPPED_EARLY))

    def _teardown(self) -> None:
        with self._lock:
            pools = list(self._pools.values())
        if ray.is_initialized():  # else ray.wait would start a local Ray just to wait on nothing
            stops = [handle.stop.remote() for actors in pools for handle in actors.handles]
            # the supervisors' aggregated Ray metrics (and buffered spans) are handed over before they are killed
            stops += [supervisor.flush.remote() for supervisor in self._supervisors]
            try:
                if stops:
                    ray.wait(stops, num_returns=len(stops), timeout=_GRACE_SECONDS)
            except RayError:
                pass
            _kill_all(pools)
            for supervisor in self._supervisors:
                _kill(supervisor)
        self._pools.clear()
        self._supervisors = []
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


def _settle_unwrapped(future: concurrent.futures.Future, done: concurrent.futures.Future) -> None:
    """Settle an `emit` future from the future of a DispatchOutcome."""
    try:
        _settle(future, result=_unwrap(done.result()))
    except BaseException as err:
        _settle(future, error=err)


def _cause(err: BaseException) -> BaseException:
    return getattr(err, "cause", None) or err


def _kill_all(pools: list[AgentActors]) -> None:
    for actors in pools:
        for handle in actors.handles:
            _kill(handle)


def _kill(actor: Any) -> None:
    try:
        ray.kill(actor, no_restart=True)
    except (RayError, ValueError):
        pass
