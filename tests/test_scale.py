"""Scale: default limits that hold 1,024 concurrent I/O dispatches, and agree with each other."""

from __future__ import annotations

import asyncio

import agents
import pytest

from actorflow import AgentFlowConfig, Event
from actorflow.runtime import limits
from actorflow.runtime.handlers import agent_concurrency

pytestmark = pytest.mark.timeout(120)


def test_default_limits_agree_with_each_other():
    cfg = AgentFlowConfig()
    agent = cfg.agent("any")
    # A supervisor has at most one call pending per dispatch on one agent: the default mailbox
    # must not fill before the supervisor's in-flight cap does.
    assert agent.mailbox_size >= limits.SUPERVISOR_IN_FLIGHT
    assert agent_concurrency(agent.max_concurrency, agents.async_sleeps) == limits.ASYNC_AGENT_CONCURRENCY
    assert agent_concurrency(agent.max_concurrency, agents.sleeps) == 1
    # A full default mailbox of 50 ms calls drains from one async replica within the deadline.
    drain = agent.mailbox_size / limits.ASYNC_AGENT_CONCURRENCY * 0.05
    assert drain < cfg.orchestration.timeout_seconds == limits.DISPATCH_TIMEOUT_SECONDS


def test_1024_concurrent_io_dispatches_with_defaults_all_succeed(make_runner):
    runner = make_runner(agents={"io": agents.async_sleeps}).start()

    async def burst():
        events = [Event("io", {"sleep": 0.05, "i": i}) for i in range(1024)]
        return await asyncio.gather(*(runner.dispatch_async(e) for e in events), return_exceptions=True)

    outcomes = asyncio.run(burst())
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert errors == []
    assert len(outcomes) == 1024 and all(o.ok and o.state.get("slept") for o in outcomes)


def test_values_that_cross_actors_pickle_flat_and_round_trip():
    from ray import cloudpickle

    from actorflow import AgentResult, AgentRun, DispatchResult, State
    from actorflow.runtime.supervisor import DispatchOutcome

    state = State({"nested": {"a": [1, 2]}, "n": 1}, {"trace": "t"})
    runs = [AgentRun("a", "ok", 0.1, usage={"input_tokens": 3, "output_tokens": 4}),
            AgentRun("b", "error", 0.2, "ValueError: x", attempt=2, iteration=1, phase="sequential")]
    result = DispatchResult(state, "mixed", "e1", "s1", 0.3, runs, ["b"], 1, None, False, "ValueError: x")
    for value in (runs[0], runs[1], result, AgentResult(state, duration=0.5)):
        assert cloudpickle.loads(cloudpickle.dumps(value)) == value
    back = cloudpickle.loads(cloudpickle.dumps(DispatchOutcome(result, ValueError("x"))))
    assert back.result == result and isinstance(back.error, ValueError)
    # The pickled outcome names one rebuild function, not State, AgentRun and DispatchResult too.
    blob = cloudpickle.dumps(DispatchOutcome(result))
    assert b"AgentRun" not in blob and b"DispatchResult" not in blob
