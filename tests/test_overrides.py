"""Per-event orchestration overrides: keywords, metadata and HTTP (see test_serve for HTTP)."""

from __future__ import annotations

import pytest

from actorflow import AgentFlowConfig, ConfigError, Event

import agents
import compose_agents

pytestmark = pytest.mark.timeout(90)


def config(**orchestration):
    orchestration.setdefault("retry_attempts", 0)
    return AgentFlowConfig.model_validate({"orchestration": orchestration})


@pytest.fixture
def runner(make_runner):
    cfg = config(mode="route", collaborative_agents=["a", "b"], sequential_agents=["a", "b", "c"])
    return make_runner(cfg, agents={name: agents.tag(name) for name in "abc"}).start()


def test_keyword_override_switches_the_mode_for_one_event(runner):
    result = runner.dispatch(Event("a"), mode="sequential")
    assert result.mode == "sequential" and result.state.get("trail") == ["a", "b", "c"]
    result = runner.dispatch(Event("a"), mode="sequential", sequential_agents=["c", "a"])
    assert result.state.get("trail") == ["c", "a"]
    assert runner.dispatch(Event("b")).mode == "route"  # the next event: the file's mode again
    assert runner.emit(Event("a"), mode="collaborative").result(30).mode == "collaborative"


def test_metadata_override_uses_the_files_lists(runner):
    result = runner.dispatch(Event("a", metadata={"orchestration_override": "sequential"}))
    assert result.mode == "sequential" and result.state.get("trail") == ["a", "b", "c"]
    # an explicit keyword wins over the metadata
    result = runner.dispatch(Event("a", metadata={"orchestration_override": "sequential"}), mode="route")
    assert result.mode == "route" and result.state.get("trail") == ["a"]


def test_dispatch_async_takes_overrides(runner):
    import asyncio

    result = asyncio.run(runner.dispatch_async(Event("a"), mode="mixed", sequential_agents=["c"]))
    assert result.mode == "mixed" and result.state.get("trail")[-1] == "c"
    assert [r.phase for r in result.runs] == ["collaborative", "collaborative", "sequential"]


@pytest.mark.parametrize(
    "overrides, metadata, words",
    [
        ({"mode": "nonsense"}, {}, ["mode", "nonsense"]),
        ({}, {"orchestration_override": "loop"}, ["loop_agent"]),
        ({"join": "quorum"}, {}, ["quorum"]),
        ({"max_concurency": 2}, {}, ["max_concurency", "max_concurrency"]),
        ({"failure_threshold": 3}, {}, ["failure_threshold"]),
    ],
)
def test_invalid_override_is_a_config_error_before_any_agent_runs(make_runner, tmp_path, overrides, metadata, words):
    cfg = config(collaborative_agents=["a"])
    runner = make_runner(cfg, agents={"a": compose_agents.counts_runs(str(tmp_path))}).start()
    with pytest.raises(ConfigError) as info:
        runner.dispatch(Event("a", metadata=metadata), **overrides)
    for word in words:
        assert word in str(info.value)
    with pytest.raises(ConfigError):
        runner.emit(Event("a", metadata=metadata), **overrides)
    assert not (tmp_path / "ran").exists()  # no agent ran
    runner.dispatch(Event("a"))
    assert (tmp_path / "ran").read_text().count("\n") == 1


def test_override_with_an_unregistered_agent_fails_before_any_runs(runner, tmp_path):
    from actorflow import AgentNotFoundError

    with pytest.raises(AgentNotFoundError) as info:
        runner.dispatch(Event("a"), mode="sequential", sequential_agents=["a", "ghost"])
    assert "ghost" in str(info.value) and info.value.result.runs == []


def test_validated_settings_are_cached_per_override_set(runner):
    resolver = runner._overrides
    event = Event("a")
    first = resolver.settings_for(runner.config, event, {"mode": "sequential"})
    assert resolver.settings_for(runner.config, event, {"mode": "sequential"}) is first
    assert resolver.settings_for(runner.config, event, {}) is None
    assert resolver.settings_for(runner.config, event, {"mode": None}) is None


def test_stream_takes_the_same_overrides(make_runner):
    runner = make_runner(agents={"a": agents.tag("a"), "b": agents.tag("b")}).start()
    updates = list(runner.stream(Event("a"), mode="sequential", sequential_agents=["a", "b"]))
    result = updates[-1].result
    assert result.mode == "sequential" and result.state.get("trail") == ["a", "b"]
    with pytest.raises(ConfigError):
        runner.stream(Event("a"), mode="sequential")  # no sequential_agents: refused before any agent runs


def test_stop_drains_a_dispatch_for_as_long_as_its_override_allows(ray_session):
    from actorflow import Runner

    runner = Runner(AgentFlowConfig.model_validate({"orchestration": {"timeout_seconds": 0.5}}))
    runner.register_agent("slow", agents.async_sleeps)
    runner.start()
    future = runner.emit(Event("slow", {"sleep": 12}), timeout_seconds=60)  # longer than the file's 0.5 s + 10 s grace
    runner.stop()
    assert future.result(timeout=5).state.get("slept") is True
