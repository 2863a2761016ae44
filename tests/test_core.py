"""Regression tests for the defects a review of the core found (issue 9), through the public API."""

from __future__ import annotations

import concurrent.futures
import glob
import os
import signal
import subprocess
import sys
import time
import tomllib

import pytest

from actorflow import (
    AgentFailedError,
    AgentFlowConfig,
    DispatchTimeoutError,
    Event,
    Hook,
    State,
)
from conftest import REPO, TESTS

import agents

pytestmark = pytest.mark.timeout(120)


def config(agents_section=None, **orchestration):
    orchestration.setdefault("retry_attempts", 0)
    return AgentFlowConfig.model_validate({"orchestration": orchestration, "agents": agents_section or {}})


def inject_unpicklable(args):
    """BEFORE_AGENT_RUN: a lock in the input of events that ask for it (it cannot be pickled)."""
    import threading

    if args.event.data.get("unpicklable") and args.agent_id == args.event.data["unpicklable"]:
        state = args.state.clone()
        state.set("lock", threading.Lock())
        return state
    return None


# 1. collaborative merge: changes, not whole states ------------------------------------------------


@pytest.mark.parametrize("mode", ["collaborative", "mixed"])
def test_collaborative_merges_changes_not_whole_states(make_runner, mode):
    names = ["a", "b", "c", "d"]
    cfg = config(mode=mode, collaborative_agents=names, sequential_agents=["tail"] if mode == "mixed" else [])
    handlers = {
        "a": agents.sets(x=2, z="from a"),   # changes x, conflicts on z
        "b": agents.sets(y=3),               # returns x untouched: must not undo a's change
        "c": agents.removes("keep"),         # removes a key, adds a meta key
        "d": agents.sets(z="from d"),        # later in the list: wins z
        "tail": agents.returns_none,
    }
    runner = make_runner(cfg, agents=handlers).start()
    result = runner.dispatch(Event("a", {"x": 1, "keep": "k", "untouched": [1, 2]}))
    data = result.state.to_dict()["data"]
    assert data == {"x": 2, "y": 3, "z": "from d", "untouched": [1, 2]}
    assert result.state.get_meta("keep_removed_by") == "remover"
    assert result.state.get_meta("merge_conflicts") == "z"


def test_agreeing_agents_are_not_a_conflict(make_runner):
    cfg = config(mode="collaborative", collaborative_agents=["a", "b"])
    runner = make_runner(cfg, agents={"a": agents.sets(x=5, y=1), "b": agents.sets(x=5, w=2)}).start()
    result = runner.dispatch(Event("a", {"x": 0}))
    assert result.state.to_dict()["data"] == {"x": 5, "y": 1, "w": 2}
    assert result.state.get_meta("merge_conflicts") is None


# 2. half-open breaker slot ------------------------------------------------------------------------


def _open_then_half_open(runner, agent):
    with pytest.raises(AgentFailedError):
        runner.dispatch(Event(agent, {"fail": True}))
    assert {a["name"]: a["circuit"] for a in runner.agents()}[agent] == "open"
    time.sleep(0.35)  # the configured reset_timeout_seconds (0.3) elapses: the breaker's clock, not a hope


BREAKER = {"failure_threshold": 1, "reset_timeout_seconds": 0.3, "half_open_successes": 1}


def test_cancelled_half_open_trial_gives_its_slot_back(make_runner):
    cfg = config(timeout_seconds=1.0, circuit_breaker=BREAKER)
    runner = make_runner(cfg, agents={"x": agents.async_sleeps_or_fails}).start()
    _open_then_half_open(runner, "x")
    with pytest.raises(DispatchTimeoutError) as info:  # the trial call is cancelled by the deadline
        runner.dispatch(Event("x", {"sleep": 10}))
    assert [r.status for r in info.value.result.runs] == ["cancelled"]
    result = runner.dispatch(Event("x"))  # a leaked slot would refuse this as circuit_open forever
    assert [(r.status, r.attempt) for r in result.runs] == [("ok", 1)]
    assert {a["name"]: a["circuit"] for a in runner.agents()}["x"] == "closed"


def test_half_open_trial_that_cannot_be_sent_gives_its_slot_back(make_runner):
    cfg = config(circuit_breaker=BREAKER)
    runner = make_runner(cfg, agents={"x": agents.async_sleeps_or_fails})
    runner.register_callback(Hook.BEFORE_AGENT_RUN, "lock", inject_unpicklable)
    runner.start()
    _open_then_half_open(runner, "x")
    with pytest.raises(AgentFailedError) as info:
        runner.dispatch(Event("x", {"unpicklable": "x"}))
    assert "cannot be sent" in info.value.result.runs[0].error
    assert runner.dispatch(Event("x")).ok


# 3. no orphaned siblings ----------------------------------------------------------------------------


def test_a_sibling_error_of_any_kind_leaves_no_orphan(make_runner):
    cfg = config(mode="collaborative", collaborative_agents=["a", "b"], failure_threshold=0.5)
    runner = make_runner(cfg, agents={"a": agents.returns_none, "b": agents.async_sleeps})
    runner.register_callback(Hook.BEFORE_AGENT_RUN, "lock", inject_unpicklable)
    runner.start()
    result = runner.dispatch(Event("a", {"unpicklable": "a", "sleep": 0.5}))
    assert sorted((r.agent, r.status) for r in result.runs) == [("a", "error"), ("b", "ok")]
    assert result.failed_agents == ["a"] and result.state.get("slept") is True


# 4. route records its failed agent --------------------------------------------------------------------


def test_route_failure_names_the_failed_agent(make_runner):
    runner = make_runner(config(), agents={"bad": agents.fails}).start()
    with pytest.raises(AgentFailedError) as info:
        runner.dispatch(Event("bad"))
    assert info.value.result.failed_agents == ["bad"]


# 5. a raising AFTER_AGENT_RUN callback is a failure, never a success ------------------------------------


def test_after_agent_run_raising_fails_the_run_without_charging_the_breaker(make_runner):
    def audit(args):
        raise ValueError("audit store down")

    cfg = config(circuit_breaker={"failure_threshold": 1})
    runner = make_runner(cfg, agents={"x": agents.tag("x")})
    runner.register_callback(Hook.AFTER_AGENT_RUN, "audit", audit)
    runner.start()
    for _ in range(2):
        with pytest.raises(AgentFailedError) as info:
            runner.dispatch(Event("x"))
        result = info.value.result
        assert [r.status for r in result.runs] == ["error"]
        assert result.runs[0].error == "AFTER_AGENT_RUN callback raised ValueError: audit store down"
        assert result.failed_agents == ["x"]
    assert {a["name"]: a["circuit"] for a in runner.agents()}["x"] == "closed"


def test_after_agent_run_failure_can_be_recovered_by_agent_error(make_runner):
    runner = make_runner(config(mode="sequential", sequential_agents=["x", "y"]),
                         agents={"x": agents.tag("x"), "y": agents.tag("y")})
    runner.register_callback(Hook.AFTER_AGENT_RUN, "audit", lambda args: (_ for _ in ()).throw(ValueError("no")))
    runner.register_callback(Hook.AGENT_ERROR, "recover", lambda args: State({"recovered": args.agent_id}))
    runner.start()
    result = runner.dispatch(Event("x"))
    assert result.ok and [r.status for r in result.runs] == ["error", "error"]
    assert result.state.get("recovered") == "y" and result.failed_agents == []


# 6. a sync handler's timeout fails only the overrunning call ------------------------------------------------


def wait_for_file(pattern, timeout=30.0):
    """The first path matching `pattern` once a handler has created it (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = glob.glob(pattern)
        if found:
            return found[0]
        time.sleep(0.01)
    raise AssertionError(f"nothing matched {pattern} within {timeout}s")


def test_sync_timeout_fails_only_the_overrunning_call_then_recycles_the_process(make_runner, tmp_path):
    runner = make_runner(config())
    runner.register_agent("s", agents.slow_or_waiting, max_concurrency=2, timeout_seconds=4.0)
    runner.start()
    [pid] = {a["name"]: a["pids"] for a in runner.agents()}["s"]
    overrun = runner.emit(Event("s", {"sleep": 30, "started": str(tmp_path / "started")}))
    wait_for_file(str(tmp_path / "started.*"))
    time.sleep(2.0)  # start the neighbour well inside the overrun's 4 s, so it is in flight when that times out
    neighbour = runner.emit(Event("s", {"release": str(tmp_path / "release")}))
    with pytest.raises(AgentFailedError) as info:
        overrun.result(timeout=30)
    assert [r.status for r in info.value.result.runs] == ["timeout"]
    (tmp_path / "release").touch()
    ok = neighbour.result(timeout=30)
    assert [(r.status, r.attempt) for r in ok.runs] == [("ok", 1)]
    assert ok.state.get("pid") == pid and ok.state.get("released") is True
    after = runner.dispatch(Event("s", {"sleep": 0, "started": str(tmp_path / "again")}))
    assert after.ok and after.state.get("pid") != pid  # the process running the abandoned call was recycled
    entry = {a["name"]: a for a in runner.agents()}["s"]
    assert entry["pids"] == [after.state.get("pid")] and entry["restarts"] == 1


def test_a_call_cancelled_in_the_mailbox_leaves_the_running_call_alone(make_runner, tmp_path):
    runner = make_runner(config())
    runner.register_agent("s", agents.blocks_until_killed, max_concurrency=1)
    runner.start()
    [pid] = {a["name"]: a["pids"] for a in runner.agents()}["s"]
    running = runner.emit(Event("s", {"sleep": 3, "started": str(tmp_path / "running")}))
    wait_for_file(str(tmp_path / "running.*"))
    # queued behind the running call; its dispatch deadline ends while it still waits in the mailbox
    with pytest.raises(DispatchTimeoutError):
        runner.dispatch(Event("s", {"sleep": 0, "started": str(tmp_path / "queued")}), timeout_seconds=0.5)
    ok = running.result(timeout=30)
    assert [(r.status, r.attempt) for r in ok.runs] == [("ok", 1)] and ok.state.get("pid") == pid
    assert {a["name"]: a for a in runner.agents()}["s"]["restarts"] == 0
    assert not glob.glob(str(tmp_path / "queued.*"))  # the cancelled call never ran


# 7. emit() futures resolve after stop() ----------------------------------------------------------------------


EMIT_AFTER_STOP = """
import concurrent.futures, sys
sys.path[:0] = [{tests!r}, {repo!r}]
import agents
from actorflow import ActorflowError, AgentFlowConfig, Event, Runner
runner = Runner(AgentFlowConfig.model_validate({{"runtime": {{"num_cpus": 1}}}}))
runner.register_agent("slow", agents.async_sleeps)
runner.start(log_to_driver=False)
future = runner.emit(Event("slow", {{"sleep": 60}}))
runner.stop(timeout=0.5)
try:
    future.result(timeout=20)
    print("RESULT")
except ActorflowError as err:
    print("ERROR", err)
except concurrent.futures.TimeoutError:
    print("HANG")
"""


def test_emit_future_resolves_when_stop_gives_up_draining():
    code = EMIT_AFTER_STOP.format(tests=str(TESTS), repo=str(REPO))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(REPO)])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=100, env=env)
    assert out.stdout.strip().startswith("ERROR"), out.stdout + out.stderr[-2000:]
    assert "stopped before this dispatch finished" in out.stdout


# 8. no lock across blocking calls; registering after the supervisor died -----------------------------------------


def test_register_agent_after_the_supervisor_died_neither_fails_nor_leaks(make_runner):
    runner = make_runner(config(), agents={"a": agents.tag("a")}).start()
    os.kill(runner.supervisor_pid, signal.SIGKILL)
    runner.register_agent("late", agents.tag("late"))
    result = runner.dispatch(Event("late"))
    assert result.state.get("trail") == ["late"]
    assert {a["name"] for a in runner.agents() if a["registered"]} == {"a", "late"}


def test_concurrent_register_dispatch_and_stop_do_not_deadlock(make_runner):
    runner = make_runner(config(), agents={"a": agents.tag("a")}).start()

    def register(i):
        runner.register_agent(f"r{i}", agents.tag(f"r{i}"))
        runner.register_callback(Hook.BEFORE_AGENT_RUN, f"cb{i}", lambda args: None)
        return runner.dispatch(Event(f"r{i}")).state.get("trail")

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        registered = [pool.submit(register, i) for i in range(3)]
        dispatched = [pool.submit(runner.dispatch, Event("a")) for _ in range(12)]
        emitted = [runner.emit(Event("a")) for _ in range(12)]
        assert [f.result(timeout=60) for f in registered] == [["r0"], ["r1"], ["r2"]]
        assert all(f.result(timeout=60).ok for f in dispatched + emitted)
        stopping = pool.submit(runner.stop)
        late = [pool.submit(runner.emit, Event("a")) for _ in range(4)]
        stopping.result(timeout=60)
        for f in late:  # each either got in before stop() and was drained, or was refused
            try:
                assert f.result(timeout=60).result(timeout=60).ok
            except Exception as err:
                assert "stopped" in str(err)


# 9. the declared Python range is the one the code needs; the in-flight gauge comes back to 0 ------------------


def test_declared_python_range_matches_the_code():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11"  # asyncio.timeout, tomllib
    assert not any(dep.startswith("tomli") for dep in project["dependencies"])


def test_in_flight_gauge_returns_to_zero_after_failures_and_timeouts(make_runner):
    runner = make_runner(config(timeout_seconds=0.5), agents={"x": agents.async_sleeps_or_fails}).start()
    with pytest.raises(AgentFailedError):
        runner.dispatch(Event("x", {"fail": True}))
    with pytest.raises(DispatchTimeoutError):
        runner.dispatch(Event("x", {"sleep": 5}))
    assert runner.dispatch(Event("x")).ok
    assert "actorflow_dispatches_in_flight 0" in runner.metrics_text()
