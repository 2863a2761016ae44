"""The five patterns through the public API, on real agent actors."""

from __future__ import annotations

import pytest

from actorflow import (
    AgentFailedError,
    AgentFlowConfig,
    AgentNotFoundError,
    Event,
    FailureThresholdExceededError,
    State,
)

import agents

pytestmark = pytest.mark.timeout(90)


def config(**orchestration):
    orchestration.setdefault("retry_attempts", 0)
    return AgentFlowConfig.model_validate({"orchestration": orchestration})


# -- route -----------------------------------------------------------------------------------


def test_route_runs_the_target_only(make_runner):
    runner = make_runner(agents={"a": agents.tag("a"), "b": agents.tag("b")}).start()
    result = runner.dispatch(Event("b", {"x": 1}))
    assert result.ok and result.mode == "route"
    assert [(r.agent, r.status, r.attempt) for r in result.runs] == [("b", "ok", 1)]
    assert result.state.get("trail") == ["b"] and result.state.get("x") == 1


def test_route_metadata_wins_over_target(make_runner):
    runner = make_runner(agents={"a": agents.tag("a"), "b": agents.tag("b")}).start()
    result = runner.dispatch(Event("a", metadata={"route": "b"}))
    assert result.state.get("trail") == ["b"]


def test_route_unknown_target_lists_registered_agents(make_runner):
    runner = make_runner(agents={"a": agents.tag("a"), "b": agents.tag("b")}).start()
    with pytest.raises(AgentNotFoundError) as info:
        runner.dispatch(Event("nope"))
    assert "'nope'" in str(info.value) and "'a'" in str(info.value) and "'b'" in str(info.value)
    assert info.value.known == ["a", "b"]


@pytest.mark.parametrize(
    "handler, key, expected",
    [
        (agents.returns_dict, "from_dict", 42),
        (agents.returns_result, "via_result", True),
        (agents.async_double, "value", 6),
    ],
)
def test_handler_return_forms(make_runner, handler, key, expected):
    runner = make_runner(agents={"h": handler}).start()
    result = runner.dispatch(Event("h", {"x": 41, "value": 3, "keep": "me"}))
    assert result.state.get(key) == expected
    assert result.state.get("keep") == "me"


def test_none_return_keeps_input_state(make_runner):
    runner = make_runner(agents={"h": agents.returns_none}).start()
    result = runner.dispatch(Event("h", {"k": [1, 2]}, {"m": "v"}))
    assert result.state == State({"k": [1, 2]}, {"m": "v"})


# -- collaborative -----------------------------------------------------------------------------


def test_collaborative_runs_all_in_isolation_and_merges_in_list_order(make_runner):
    cfg = config(mode="collaborative", collaborative_agents=["first", "second", "third"])
    handlers = {
        "third": agents.writes_key("t", 3),
        "first": agents.writes_key("f", 1),
        "second": agents.mutates_input,
    }
    runner = make_runner(cfg, agents=handlers).start()
    result = runner.dispatch(Event("first", {"shared_list": ["orig"]}))
    assert result.ok
    assert sorted(r.agent for r in result.runs) == ["first", "second", "third"]
    # list order decides the conflict on "shared", not registration or finish order
    assert result.state.get("shared") == 3
    assert result.state.get("f") == 1 and result.state.get("t") == 3
    # "second" mutated its own copy only: the merged state has its output, others saw no mutation
    assert result.state.get("seen") == ["orig", "mutated"]


def test_collaborative_respects_max_concurrency(make_runner):
    cfg = config(mode="collaborative", collaborative_agents=["a", "b", "c", "d"], max_concurrency=2)
    runner = make_runner(cfg, agents={n: agents.sleeps for n in "abcd"}).start()
    result = runner.dispatch(Event("a", {"sleep": 0.3}))
    # two waves of two 0.3 s sleeps: never all four at once
    assert result.ok and result.duration >= 0.55


def test_collaborative_empty_list_means_all_enabled_agents(make_runner):
    runner = make_runner(config(mode="collaborative"), agents={"a": agents.tag("a"), "b": agents.tag("b")}).start()
    result = runner.dispatch(Event("a"))
    assert result.state.get("a") and result.state.get("b")


@pytest.mark.parametrize(
    "threshold, failing, ok",
    [
        (0.0, 0, True),  # no failure, threshold 0
        (0.0, 1, False),  # threshold 0: any failure fails
        (0.5, 1, True),  # 1/4 under 0.5
        (0.5, 2, True),  # 2/4 == 0.5 is tolerated (only strictly more fails)
        (0.5, 3, False),  # 3/4 over
    ],
)
def test_collaborative_failure_threshold(make_runner, threshold, failing, ok):
    names = ["a", "b", "c", "d"]
    handlers = {n: (agents.fails if i < failing else agents.tag(n)) for i, n in enumerate(names)}
    cfg = config(mode="collaborative", collaborative_agents=names, failure_threshold=threshold)
    runner = make_runner(cfg, agents=handlers).start()
    failed = names[:failing]
    if ok:
        result = runner.dispatch(Event("a"))
    else:
        with pytest.raises(FailureThresholdExceededError) as info:
            runner.dispatch(Event("a"))
        result = info.value.result
        assert not result.ok and "failure_threshold" in str(info.value)
    assert result.failed_agents == failed
    for name in failed:
        assert result.state.get_meta(f"{name}_failed") == "true"
        assert "bad input for this agent" in result.state.get_meta(f"{name}_error")
    for name in names[failing:]:
        assert result.state.get(name) is True  # survivors' output is kept, even in the partial result


# -- sequential --------------------------------------------------------------------------------


def test_sequential_propagates_state_in_order(make_runner):
    cfg = config(mode="sequential", sequential_agents=["c", "a", "b"])
    runner = make_runner(cfg, agents={n: agents.tag(n) for n in "abc"}).start()
    result = runner.dispatch(Event("c"))
    assert result.state.get("trail") == ["c", "a", "b"]
    assert [r.agent for r in result.runs] == ["c", "a", "b"]


def test_sequential_stops_at_first_failure(make_runner):
    cfg = config(mode="sequential", sequential_agents=["a", "bad", "c"])
    runner = make_runner(cfg, agents={"a": agents.tag("a"), "bad": agents.fails, "c": agents.tag("c")}).start()
    with pytest.raises(AgentFailedError) as info:
        runner.dispatch(Event("a"))
    err = info.value
    assert err.agent == "bad" and "ValueError" in err.cause
    state = err.result.state
    assert state.get("pipeline_failed") is True and state.get("failed_stage") == "bad"
    assert state.get("trail") == ["a"]  # the input of the failed stage
    assert [(r.agent, r.status) for r in err.result.runs] == [("a", "ok"), ("bad", "error"), ("c", "skipped")]
    assert err.result.failed_agents == ["bad"]


# -- loop --------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["loop_complete", "loop_completed"])
def test_loop_stops_when_complete(make_runner, key):
    cfg = config(mode="loop", loop_agent="inc", max_iterations=10)
    runner = make_runner(cfg, agents={"inc": agents.increments}).start()
    result = runner.dispatch(Event("inc", {"until": 3, "complete_key": key}))
    assert result.iterations == 3 and result.completion_reason == "loop_complete"
    assert result.state.get("count") == 3
    assert [r.iteration for r in result.runs] == [1, 2, 3]


def test_loop_stops_at_max_iterations(make_runner):
    cfg = config(mode="loop", loop_agent="inc", max_iterations=4)
    runner = make_runner(cfg, agents={"inc": agents.increments}).start()
    result = runner.dispatch(Event("inc"))
    assert result.iterations == 4 and result.completion_reason == "max_iterations"
    assert result.state.get("count") == 4


def test_loop_failure_stops_the_loop(make_runner):
    cfg = config(mode="loop", loop_agent="bad", max_iterations=5)
    runner = make_runner(cfg, agents={"bad": agents.fails}).start()
    with pytest.raises(AgentFailedError) as info:
        runner.dispatch(Event("bad"))
    assert info.value.result.iterations == 1
    assert [r.status for r in info.value.result.runs] == ["error"]


# -- mixed -------------------------------------------------------------------------------------


def test_mixed_collaborative_then_sequential(make_runner):
    cfg = config(mode="mixed", collaborative_agents=["p", "q"], sequential_agents=["s1", "s2"])
    handlers = {n: agents.tag(n) for n in ["p", "q", "s1", "s2"]}
    runner = make_runner(cfg, agents=handlers).start()
    result = runner.dispatch(Event("p"))
    assert result.state.get("p") and result.state.get("q")
    assert result.state.get("trail")[-2:] == ["s1", "s2"]
    assert [(r.agent, r.phase) for r in result.runs][-2:] == [("s1", "sequential"), ("s2", "sequential")]
    assert {(r.agent, r.phase) for r in result.runs[:2]} == {("p", "collaborative"), ("q", "collaborative")}


def test_mixed_threshold_failure_skips_sequential_phase(make_runner):
    cfg = config(
        mode="mixed", collaborative_agents=["p", "q"], sequential_agents=["s"], failure_threshold=0.0
    )
    runner = make_runner(cfg, agents={"p": agents.fails, "q": agents.tag("q"), "s": agents.tag("s")}).start()
    with pytest.raises(FailureThresholdExceededError) as info:
        runner.dispatch(Event("p"))
    runs = info.value.result.runs
    assert ("s", "skipped", "sequential") in [(r.agent, r.status, r.phase) for r in runs]


def test_every_named_agent_needs_a_handler(make_runner):
    cfg = config(mode="sequential", sequential_agents=["a", "ghost"])
    runner = make_runner(cfg, agents={"a": agents.tag("a")}).start()
    with pytest.raises(AgentNotFoundError) as info:
        runner.dispatch(Event("a"))
    assert "'ghost'" in str(info.value)
    assert info.value.result.runs == []  # nothing ran
