"""Nested flows: an agent that runs a whole sub-orchestration on its input state.

The runner turns every nested flow into a `FlowPlan` (picklable) and creates the sub-flow's
agents as actors on the same cluster under path-qualified names (`"NAME/analyzer"`). The
supervisor builds a `FlowEndpoint` per plan: to the parent's `DispatchInvocation` it looks like
an agent endpoint (`attempt` → `Attempt`), so retries, AGENT_ERROR and the pattern's rules
apply to the sub-flow as to any agent. An attempt runs the sub-flow's pattern in the supervisor
itself, as a nested `DispatchInvocation` over the sub-flow's endpoints: awaited, no polling, no
supervisor per call. The sub-dispatch keeps the session id, gets meta `parent_event_id`, and
its deadline is the parent's remaining time when that is shorter. Its runs go into the parent's
`runs`, path-qualified, before NAME's own run. Its steps go into the parent's step log, keyed
under the flow call's step key, so a rerun replays the sub-flow's finished agents too; an
`Interrupt` inside it stops the parent dispatch (runtime/steps.py).
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from actorflow import tracing
from actorflow.config import AgentConfig, AgentFlowConfig
from actorflow.events import AgentResult, Event, State, describe_error
from actorflow.exceptions import AgentFailedError
from actorflow.interrupts import Interrupt
from actorflow.patterns import mode_spec
from actorflow.runtime.endpoint import Attempt
from actorflow.updates import DispatchUpdate

if TYPE_CHECKING:
    from actorflow.runtime.invocation import DispatchInvocation

__all__ = ["FlowPlan", "FlowEndpoint", "flow_plans", "flow_agents"]

_ADDED_META = ("parent_event_id",)


@dataclass(slots=True)
class FlowPlan:
    """One nested flow as the runner hands it to the supervisor."""

    name: str
    """Path-qualified agent name of the flow (`"outer/inner"`)."""
    config: AgentFlowConfig
    """The sub-flow's configuration."""
    members: list[str]
    """Its enabled agents (local names), in file order, code-free flows included."""
    flows: dict[str, FlowPlan] = field(default_factory=dict)
    """Its own nested flows, by local name."""


def flow_plans(flows: Mapping[str, AgentFlowConfig], prefix: str = "") -> dict[str, FlowPlan]:
    """Plans for `flows` (agent name → sub-config), recursively."""
    plans = {}
    for name, cfg in flows.items():
        qualified = f"{prefix}{name}"
        members = cfg.enabled_agents()
        for agent in cfg.orchestration.named_agents():
            if agent not in members:
                members.append(agent)
        plans[name] = FlowPlan(qualified, cfg, members, flow_plans(cfg.flows, f"{qualified}/"))
    return plans


def flow_agents(plans: Mapping[str, FlowPlan]) -> dict[str, tuple[AgentConfig, str | None, AgentFlowConfig]]:
    """Every actor-backed agent of the plans: qualified name → (its config, its `handler` spec, its flow's config)."""
    found: dict[str, tuple[AgentConfig, str | None, AgentFlowConfig]] = {}
    for plan in plans.values():
        for local in plan.members:
            if local in plan.flows:
                continue
            cfg = plan.config.agent(local)
            found[f"{plan.name}/{local}"] = (cfg, cfg.handler, plan.config)
        found.update(flow_agents(plan.flows))
    return found


class FlowEndpoint:
    """Runs a sub-flow for a parent invocation, as one attempt of the flow's agent."""

    nested = True

    def __init__(self, plan: FlowPlan, endpoints: Mapping[str, Any]) -> None:
        self.name = plan.name
        self.config = AgentConfig(role="flow", description=f"nested flow {plan.config.agent_flow.name}")
        self.settings = plan.config.orchestration
        self.spec = mode_spec(self.settings.mode)
        self.endpoints = dict(endpoints)
        self.entry = self.spec.entry(self.settings, list(self.endpoints)) or ""

    async def attempt(
        self, message: Any, accept: Callable[[AgentResult], Awaitable[State]], *, parent: DispatchInvocation,
        step: str,
    ) -> Attempt:
        """Run the sub-flow once. With tracing on (`message` carries `(traceparent, attempt)`),
        the attempt is an `actorflow.agent` span made here, and the sub-flow's agents' spans are
        its children."""
        tracer = tracing.active() if len(message) > 2 else None
        if tracer is None:
            return await self._run(message[0], message[1], accept, parent, step)
        span = tracer.start_agent(self.name, message[2])
        try:
            attempt = await self._run(message[0], message[1], accept, parent, step, tracer.traceparent(span))
        except BaseException as err:
            tracer.end(span, describe_error(err), "cancelled" if isinstance(err, asyncio.CancelledError) else "error")
            raise
        tracer.end(span, attempt.error.cause if attempt.error is not None else None, attempt.status)
        return attempt

    async def _run(
        self, event: Event, state: State, accept: Callable[[AgentResult], Awaitable[State]],
        parent: DispatchInvocation, step: str, trace: str | None = None,
    ) -> Attempt:
        from actorflow.runtime.invocation import DispatchInvocation
        from actorflow.runtime.retry import RetryPolicy

        local = self.name.rsplit("/", 1)[-1]
        started = time.perf_counter()
        meta = {**state.meta, "parent_event_id": event.id, "session_id": event.session_id}
        sub_event = Event(self.entry, state.data, {k: v for k, v in meta.items() if k not in ("orchestration_override", "route")},
                          source=f"flow:{self.name}")
        sub_state = State(copy.deepcopy(dict(state.data)), dict(meta))
        timeout = min(self.settings.timeout_seconds, max(0.0, parent.deadline - time.monotonic()))
        inv = DispatchInvocation(
            sub_event, self.settings, sub_state, endpoints=self.endpoints, callbacks=parent.callbacks,
            retry=RetryPolicy.from_config(self.settings), metrics=parent.metrics, not_found=parent.not_found,
            deadline=time.monotonic() + timeout, started=parent.started, sink=_qualified(parent.sink, local),
            trace=trace,
            steps=parent.steps, step_prefix=f"{step}/",
        )

        def failed(status: str, cause: str, retryable: bool = False) -> Attempt:
            error = AgentFailedError(f"agent {local!r} failed: {cause}", agent=local, cause=cause)
            return Attempt(status, time.perf_counter() - started, error=error, retryable=retryable)

        try:
            for agent in self.spec.reached(sub_event, self.settings, list(self.endpoints)):
                if agent not in self.endpoints:
                    return failed("error", describe_error(parent.not_found(f"{self.name}/{agent}")))
            try:
                outcome = await asyncio.wait_for(self.spec.run(inv, sub_state), timeout)
            except TimeoutError:
                return failed("timeout", f"nested flow {self.name!r} did not finish within {timeout:.3g}s", True)
            except Interrupt:
                raise
            except Exception as err:
                return failed("error", f"nested flow {self.name!r} failed: {describe_error(err)}")
            if outcome.error is not None:
                return failed("error", f"nested flow {self.name!r} failed: {describe_error(outcome.error)}")
            output = outcome.state
            for key in _ADDED_META:
                if key not in state.meta:
                    output.pop_meta(key)
            if "session_id" not in state.meta:
                output.pop_meta("session_id")
            result = AgentResult(output, duration=time.perf_counter() - started)
            try:
                accepted = await accept(result)
            except AgentFailedError as err:
                return Attempt("error", time.perf_counter() - started, error=err)
            return Attempt("ok", time.perf_counter() - started, output=accepted, result=result)
        finally:
            for run in inv.runs:
                parent.runs.append(replace(run, agent=f"{local}/{run.agent}"))


def _qualified(sink: Callable[[DispatchUpdate], None] | None, prefix: str) -> Callable[[DispatchUpdate], None] | None:
    """The parent's update sink, with the sub-flow's agent names path-qualified (`NAME/agent`)."""
    if sink is None:
        return None

    def qualified(update: DispatchUpdate) -> None:
        run = replace(update.run, agent=f"{prefix}/{update.run.agent}") if update.run is not None else None
        sink(replace(update, agent=f"{prefix}/{update.agent}" if update.agent else None, run=run))

    return qualified
