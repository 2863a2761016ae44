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


# -- several supervisors -----------------------------------------------------------------------

def _sessions_by_slot(count=2):
    """A session id that maps to each supervisor slot."""
    from actorflow.runtime.supervisors import supervisor_slot

    found = {}
    for i in range(100):
        found.setdefault(supervisor_slot(f"session-{i}", count), f"session-{i}")
    return [found[slot] for slot in range(count)]


def _on(session, target="a", **data):
    return Event(target, data, metadata={"session_id": session})


def _dispatches_by_supervisor(runner):
    import re

    counts = {}
    for line in runner.metrics_text().splitlines():
        match = re.match(r'actorflow_dispatches_total\{.*supervisor="(\d)"\} (\d+)', line)
        if match:
            counts[int(match[1])] = counts.get(int(match[1]), 0) + int(match[2])
    return counts


def test_several_supervisors_keep_a_session_on_one_and_spread_the_others(make_runner):
    runner = make_runner(AgentFlowConfig.from_dict({"runtime": {"supervisors": 2}}),
                         agents={"a": agents.tag("a")}).start()
    pids = runner.supervisor_pids
    assert len(pids) == 2 and len(set(pids)) == 2
    first, second = _sessions_by_slot()
    for _ in range(6):
        assert runner.dispatch(_on(first)).ok
    assert _dispatches_by_supervisor(runner) == {0: 6}
    for _ in range(4):
        assert runner.dispatch(_on(second)).ok
    assert _dispatches_by_supervisor(runner) == {0: 6, 1: 4}
    # Sessions of their own (the event id) spread over both.
    futures = [runner.emit(Event("a")) for _ in range(40)]
    assert all(f.result(timeout=60).ok for f in futures)
    counts = _dispatches_by_supervisor(runner)
    assert counts[0] > 6 and counts[1] > 4 and sum(counts.values()) == 50


def test_registrations_reach_every_supervisor_and_each_recovers_on_its_own(make_runner):
    import os
    import signal

    from actorflow import Hook

    runner = make_runner(AgentFlowConfig.from_dict({"runtime": {"supervisors": 2}}),
                         agents={"a": agents.tag("a")}).start()
    first, second = _sessions_by_slot()
    runner.register_agent("late", agents.tag("late"))
    runner.register_callback(Hook.BEFORE_EVENT_HANDLING, "mark", lambda args: args.state.set("marked", True))
    for session in (first, second):
        result = runner.dispatch(_on(session, "late"))
        assert result.state.get("trail") == ["late"] and result.state.get("marked")

    kept, killed = runner.supervisor_pids
    os.kill(killed, signal.SIGKILL)
    runner.register_callback(Hook.BEFORE_EVENT_HANDLING, "mark2", lambda args: args.state.set("marked2", True))
    for session in (first, second):  # the dead one was replaced, and knows both callbacks
        result = runner.dispatch(_on(session, "late"))
        assert result.ok and result.state.get("marked") and result.state.get("marked2")
    assert runner.supervisor_pids[0] == kept and runner.supervisor_pids[1] not in (None, killed)


def test_each_supervisor_has_its_own_circuit_breaker(make_runner):
    config = AgentFlowConfig.from_dict({
        "runtime": {"supervisors": 2},
        "orchestration": {"retry_attempts": 0, "circuit_breaker": {"failure_threshold": 2}},
    })
    runner = make_runner(config, agents={"bad": agents.fails}).start()
    first, second = _sessions_by_slot()
    for _ in range(2):
        with pytest.raises(Exception):
            runner.dispatch(_on(first, "bad"))
    with pytest.raises(Exception) as info:  # open on the first supervisor: fails fast
        runner.dispatch(_on(first, "bad"))
    assert [run.status for run in info.value.result.runs] == ["circuit_open"]
    with pytest.raises(Exception) as info:  # the second still calls the agent
        runner.dispatch(_on(second, "bad"))
    assert [run.status for run in info.value.result.runs] == ["error"]
    (entry,) = runner.agents()
    assert entry["circuits"] == ["open", "closed"] and entry["circuit"] == "open"


# -- multi-node ------------------------------------------------------------------------------

def test_scheduling_options_per_agent(ray_session):
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from actorflow import ConfigError
    from actorflow.runtime.placement import scheduling_options, supervisor_options

    def agent(**options):
        return AgentFlowConfig.from_dict({"agents": {"a": options}}).agent("a")

    assert scheduling_options(agent()) == {}
    assert scheduling_options(agent(scheduling="spread")) == {"scheduling_strategy": "SPREAD"}
    pack = scheduling_options(agent(scheduling="pack"))["scheduling_strategy"]
    assert isinstance(pack, NodeAffinitySchedulingStrategy) and pack.soft
    assert pack.node_id == ray_session.get_runtime_context().get_node_id()
    assert isinstance(supervisor_options(1)["scheduling_strategy"], NodeAffinitySchedulingStrategy)
    assert supervisor_options(3) == {"scheduling_strategy": "SPREAD"}
    with pytest.raises(ConfigError, match="must be one of"):
        agent(scheduling="wide")


@pytest.mark.timeout(200)
def test_spread_agents_survive_a_node_removed_under_load(tmp_path):
    import json
    import os
    import subprocess
    import sys

    from conftest import REPO, TESTS
    from scale_cluster_check import CONFIG, WAVE

    config = tmp_path / "scale.toml"
    config.write_text(CONFIG)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(REPO)])}
    env.pop("RAY_ADDRESS", None)
    done = subprocess.run([sys.executable, str(TESTS / "scale_cluster_check.py"), str(config)],
                          capture_output=True, text=True, timeout=180, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])

    assert report["placed"] == ["head", "w1", "w2"]  # one replica per node
    assert report["sent"] == 2 * WAVE and report["hung"] == 0
    assert sum(report["outcomes"].values()) == 2 * WAVE  # none lost
    assert not [kind for kind in report["outcomes"] if kind.startswith("unnamed")]
    assert report["removed"] not in report["nodes_after"] and report["restarts"] >= 1
    print(f"node removed under load: {report}")
