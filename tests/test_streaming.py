"""Streaming a dispatch (DESIGN "Streaming a dispatch"): order, timing, failure, cancel."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from actorflow import AgentFlowConfig, DispatchUpdate, Event

import agents

pytestmark = pytest.mark.timeout(90)


def config(**orchestration):
    orchestration.setdefault("retry_attempts", 0)
    return AgentFlowConfig.model_validate({"orchestration": orchestration})


def waits_for_release(event, state):
    """Finishes once the file named by data `release` exists (the test creates it)."""
    deadline = time.monotonic() + 20
    while not os.path.exists(event.data["release"]) and time.monotonic() < deadline:
        time.sleep(0.01)
    return {"released": os.path.exists(event.data["release"])}


async def notes_cancel(event, state):
    """Waits long; writes the file named by data `cancelled` when its call is cancelled."""
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        with open(event.data["cancelled"], "w") as f:
            f.write("cancelled")
        raise
    return {}


def kinds(updates):
    return [(u.kind, u.agent) for u in updates]


def check_shape(updates, event):
    assert updates[0].kind == "dispatch_started" and updates[-1].kind == "dispatch_finished"
    assert all(isinstance(u, DispatchUpdate) and u.event_id == event.id for u in updates)
    ats = [u.at for u in updates]
    assert ats == sorted(ats) or max(a - b for a, b in zip(ats, ats[1:])) < 0.01
    result = updates[-1].result
    finished = [u.run for u in updates if u.kind == "agent_finished"]
    assert finished == result.runs  # every recorded run streamed, in the same order
    for u in updates:
        u.to_dict()  # JSON-serializable form exists
    return result


def test_collaborative_fast_agent_finishes_before_the_slow_one(make_runner, tmp_path):
    release = tmp_path / "release"
    cfg = config(mode="collaborative", collaborative_agents=["slow", "fast"])
    runner = make_runner(cfg, agents={"slow": waits_for_release, "fast": agents.tag("fast")}).start()
    event = Event("slow", {"release": str(release)})
    updates = []
    for update in runner.stream(event):
        updates.append(update)
        if update.kind == "agent_finished" and update.agent == "fast":
            release.touch()  # the slow agent can only end after we saw the fast one finish
    result = check_shape(updates, event)
    assert result.ok and result.state.get("released") is True
    assert kinds(updates)[-3:] == [("agent_finished", "fast"), ("agent_finished", "slow"), ("dispatch_finished", None)]
    started = {u.agent for u in updates if u.kind == "agent_started"}
    assert started == {"slow", "fast"}
    assert all(run.started_at is not None and run.started_at >= 0 for run in result.runs)


@pytest.mark.parametrize(
    "orchestration, agent_names, expected",
    [
        ({"mode": "route"}, ["a"], ["a"]),
        ({"mode": "sequential", "sequential_agents": ["a", "b"]}, ["a", "b"], ["a", "b"]),
        ({"mode": "loop", "loop_agent": "inc", "max_iterations": 3}, ["inc"], ["inc", "inc", "inc"]),
        (
            {"mode": "mixed", "collaborative_agents": ["a", "b"], "sequential_agents": ["c"]},
            ["a", "b", "c"],
            None,
        ),
    ],
)
def test_every_pattern_streams(make_runner, orchestration, agent_names, expected):
    handlers = {n: (agents.increments if n == "inc" else agents.tag(n)) for n in agent_names}
    runner = make_runner(config(**orchestration), agents=handlers).start()
    event = Event(agent_names[0], {})
    updates = list(runner.stream(event))
    result = check_shape(updates, event)
    assert result.ok, result.error
    order = [u.agent for u in updates if u.kind == "agent_finished"]
    if expected is not None:
        assert order == expected
    else:  # mixed: the collaborative phase ends before the sequential stage starts
        assert sorted(order[:2]) == ["a", "b"] and order[2] == "c"
        assert [u.agent for u in updates if u.kind == "agent_started"][-1] == "c"
    for u in updates:
        if u.kind == "agent_started":
            assert any(f.kind == "agent_finished" and f.agent == u.agent for f in updates[updates.index(u):])


def test_failed_dispatch_streams_to_the_end_without_raising(make_runner):
    cfg = config(mode="sequential", sequential_agents=["a", "bad", "c"])
    runner = make_runner(cfg, agents={"a": agents.tag("a"), "bad": agents.fails, "c": agents.tag("c")}).start()
    event = Event("a")
    updates = list(runner.stream(event))
    result = check_shape(updates, event)
    assert not result.ok and "bad" in result.failed_agents and "ValueError" in result.error
    statuses = [(u.run.agent, u.run.status) for u in updates if u.kind == "agent_finished"]
    assert statuses[:2] == [("a", "ok"), ("bad", "error")]


def test_unknown_agent_is_a_failed_stream(make_runner):
    runner = make_runner(agents={"a": agents.tag("a")}).start()
    updates = list(runner.stream(Event("nobody")))
    assert kinds(updates) == [("dispatch_started", None), ("dispatch_finished", None)]
    assert "AgentNotFoundError" in updates[-1].result.error


def test_consumer_that_stops_cancels_the_dispatch(make_runner, tmp_path):
    marker = tmp_path / "cancelled"
    runner = make_runner(agents={"waiter": notes_cancel}).start()
    stream = runner.stream(Event("waiter", {"cancelled": str(marker)}))
    for update in stream:
        if update.kind == "agent_started":
            break
    stream.close()  # what a `for` loop's early exit does once the iterator is dropped
    deadline = time.monotonic() + 20
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert marker.read_text() == "cancelled"
    # the supervisor counted it as cancelled and has nothing in flight; dispatches go on
    metrics = runner.metrics_text()
    assert 'actorflow_dispatch_duration_seconds_count{mode="route",outcome="cancelled"} 1.0' in metrics
    assert "actorflow_dispatches_in_flight 0.0" in metrics
    assert list(runner.stream(Event("nobody")))[-1].kind == "dispatch_finished"


def test_stream_async(make_runner):
    runner = make_runner(agents={"a": agents.tag("a")}).start()
    event = Event("a")

    async def collect():
        return [update async for update in runner.stream_async(event)]

    updates = asyncio.run(collect())
    result = check_shape(updates, event)
    assert kinds(updates) == [
        ("dispatch_started", None), ("agent_started", "a"), ("agent_finished", "a"), ("dispatch_finished", None),
    ]
    assert result.ok and result.state.get("a") is True


def test_llm_tokens_stream_before_the_agent_finishes(make_runner, monkeypatch):
    from actorflow import load_config

    from benchmarks.chat_server import ChatServer
    from conftest import REPO

    with ChatServer() as server:
        monkeypatch.setenv("OLLAMA_HOST", server.url)
        monkeypatch.delenv("ACTORFLOW_ENV", raising=False)
        config = load_config(REPO / "configs" / "llm" / "loop.toml", overrides={"max_iterations": 1})
        runner = make_runner(config).start()
        event = Event("quality_improver", {"content": "draft"})
        updates = list(runner.stream(event))
    result = check_shape(updates, event)
    assert result.ok, result.error
    tokens = [u for u in updates if u.kind == "token"]
    assert tokens and all(u.agent == "quality_improver" for u in tokens)
    assert "".join(u.text for u in tokens) == result.state.get("quality_improver_response")
    finished = next(i for i, u in enumerate(updates) if u.kind == "agent_finished")
    assert all(updates.index(u) < finished for u in tokens)
    assert result.runs[0].usage and result.runs[0].usage["output_tokens"] > 0, result.runs
    metrics = runner.metrics_text()
    assert 'actorflow_llm_tokens_total{agent="quality_improver",direction="output",model="gemma3:1b"}' in metrics
