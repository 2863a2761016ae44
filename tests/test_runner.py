"""The Runner's lifecycle and the actor model: processes, private state, concurrency, draining."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os

import pytest

from actorflow import ActorflowError, AgentFlowConfig, Event, Runner

import agents

pytestmark = pytest.mark.timeout(90)


def test_dispatch_before_start_says_to_start(ray_session):
    runner = Runner()
    runner.register_agent("a", agents.tag("a"))
    with pytest.raises(ActorflowError, match=r"start\(\)"):
        runner.dispatch(Event("a"))


def test_each_agent_runs_in_its_own_process(make_runner):
    runner = make_runner(agents={"a": agents.tag("a"), "b": agents.tag("b")}).start()
    pid_a = runner.dispatch(Event("a")).state.get_meta("a_pid")
    pid_b = runner.dispatch(Event("b")).state.get_meta("b_pid")
    assert len({pid_a, pid_b, str(os.getpid())}) == 3
    listed = {a["name"]: a["pids"] for a in runner.agents()}
    assert listed == {"a": [int(pid_a)], "b": [int(pid_b)]}


def test_agent_private_state_survives_across_dispatches(make_runner):
    runner = make_runner(agents={"counter": agents.Counter}).start()
    counts = [runner.dispatch(Event("counter", metadata={"session_id": "s1"})).state.get("session_count") for _ in range(3)]
    other = runner.dispatch(Event("counter", metadata={"session_id": "s2"})).state.get("session_count")
    assert counts == [1, 2, 3] and other == 1
    assert runner.dispatch(Event("counter")).state.get("started") == 1  # on_start ran once


def test_async_agent_subclass(make_runner):
    runner = make_runner(agents={"echo": agents.AsyncEcho}).start()
    assert runner.dispatch(Event("echo", {"q": 1})).state.get("echo") == {"q": 1}


def test_register_agent_after_start(make_runner):
    runner = make_runner(agents={"a": agents.tag("a")}).start()
    runner.register_agent("late", agents.tag("late"))
    assert runner.dispatch(Event("late")).state.get("late") is True
    with pytest.raises(ValueError, match="already registered"):
        runner.register_agent("late", agents.tag("late"))


def test_bad_handlers_are_rejected_at_registration(ray_session):
    runner = Runner()
    with pytest.raises(TypeError, match="not an actorflow.Agent"):
        runner.register_agent("x", dict)
    with pytest.raises(TypeError, match="not an instance"):
        runner.register_agent("x", agents.Counter())
    with pytest.raises(ActorflowError, match="cannot be imported"):
        runner.register_agent("x", "no_such_module_here:fn")


def test_emit_runs_dispatches_concurrently(make_runner):
    runner = make_runner(agents={"slow": agents.async_sleeps}, max_concurrency=5)
    runner.register_agent("pool", agents.async_sleeps, max_concurrency=8)
    runner.start()
    futures = [runner.emit(Event("pool", {"sleep": 0.5, "i": i})) for i in range(8)]
    results = [f.result(timeout=30) for f in futures]
    assert [r.state.get("i") for r in results] == list(range(8))
    # eight 0.5 s calls overlapped: far less than 8 × 0.5 s end to end
    assert max(r.duration for r in results) < 2.0


def test_replicas_spread_calls_over_processes(make_runner):
    runner = make_runner()
    runner.register_agent("sync", agents.sleeps, replicas=2)
    runner.start()
    futures = [runner.emit(Event("sync", {"sleep": 0.3})) for _ in range(4)]
    concurrent.futures.wait(futures, timeout=30)
    assert len(next(a for a in runner.agents() if a["name"] == "sync")["pids"]) == 2
    assert all(f.result().ok for f in futures)


def test_dispatch_async(make_runner):
    runner = make_runner(agents={"a": agents.async_double}).start()

    async def main():
        return await asyncio.gather(*(runner.dispatch_async(Event("a", {"value": v})) for v in range(4)))

    results = asyncio.run(main())
    assert [r.state.get("value") for r in results] == [0, 2, 4, 6]


def test_stop_drains_in_flight_dispatches_then_refuses_new_ones(make_runner):
    runner = make_runner(agents={"slow": agents.async_sleeps}).start()
    futures = [runner.emit(Event("slow", {"sleep": 1.0})) for _ in range(3)]
    runner.stop()
    assert all(f.result(timeout=1).state.get("slept") for f in futures)
    with pytest.raises(ActorflowError, match="stopped"):
        runner.dispatch(Event("slow"))
    with pytest.raises(ActorflowError, match="stopped"):
        runner.emit(Event("slow"))


def test_runners_share_one_ray_without_clashing(make_runner):
    one = make_runner(agents={"a": agents.writes_key("who", "one")}).start()
    two = make_runner(agents={"a": agents.writes_key("who", "two")}).start()
    assert one.dispatch(Event("a")).state.get("who") == "one"
    assert two.dispatch(Event("a")).state.get("who") == "two"
    two.stop()
    assert one.dispatch(Event("a")).state.get("who") == "one"


def test_context_manager_starts_and_stops(ray_session):
    config = AgentFlowConfig()
    with Runner(config) as runner:
        runner.register_agent("a", agents.tag("a"))
        assert runner.dispatch(Event("a")).ok
    assert not runner.started
    assert ray_session.is_initialized()  # a Ray the runner did not start is left running


def test_result_to_dict_is_json(make_runner):
    import json

    runner = make_runner(agents={"a": agents.tag("a")}).start()
    payload = json.loads(json.dumps(runner.dispatch(Event("a", {"n": 1}, {"session_id": "s"})).to_dict()))
    assert payload["ok"] is True and payload["session_id"] == "s" and payload["state"]["data"]["n"] == 1
    assert payload["runs"][0]["agent"] == "a" and payload["runs"][0]["status"] == "ok"
