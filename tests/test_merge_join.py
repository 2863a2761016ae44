"""`[orchestration.merge]` reducers and join policies, on real agent actors."""

from __future__ import annotations

import os
import time

import pytest

from actorflow import (
    AgentFlowConfig,
    ConfigError,
    DispatchError,
    Event,
    FailureThresholdExceededError,
    MergeConflictError,
)

import compose_agents as ca

pytestmark = pytest.mark.timeout(90)


def config(**orchestration):
    orchestration.setdefault("retry_attempts", 0)
    orchestration.setdefault("mode", "collaborative")
    return AgentFlowConfig.model_validate({"orchestration": orchestration})


INPUT = {"findings": ["x"], "tags": ["b", "z"], "score": 5, "total": 1, "low": 4,
         "cfg": {"a": {"x": 1}, "k": 1}, "name": "in", "first": "in"}
A = {"findings": "fa", "items": [1], "tags": ["a"], "score": 7, "total": 2, "low": 3,
     "cfg": {"a": {"y": 2}}, "name": "A", "first": "A"}
B = {"findings": "fb", "items": [2, 3], "tags": ["z", "c"], "score": 6, "total": 3, "low": 9,
     "cfg": {"a": {"x": 5}, "m": 1}, "name": "B", "first": "B"}
REDUCERS = {"findings": "append", "items": "extend", "tags": "union", "score": "max", "total": "sum",
            "low": "min", "cfg": "deep", "first": "first_wins"}


def test_every_reducer_with_exact_values(make_runner):
    runner = make_runner(config(collaborative_agents=["a", "b"], merge=REDUCERS),
                         agents={"a": ca.writes(**A), "b": ca.writes(**B)}).start()
    result = runner.dispatch(Event("a", INPUT))
    assert result.ok
    assert result.state.data == {
        "findings": ["x", "fa", "fb"], "items": [1, 2, 3], "tags": ["a", "b", "c", "z"], "score": 7,
        "total": 6, "low": 3, "cfg": {"a": {"x": 5, "y": 2}, "k": 1, "m": 1}, "name": "B", "first": "A",
    }
    assert result.state.get_meta("merge_conflicts") == "first,name"


def test_error_reducer_raises_merge_conflict_with_the_partial_result(make_runner):
    cfg = config(collaborative_agents=["a", "b"], merge={"default": "error", "total": "sum"})
    runner = make_runner(cfg, agents={"a": ca.writes(total=2, name="A"), "b": ca.writes(total=3, name="B")}).start()
    with pytest.raises(MergeConflictError) as info:
        runner.dispatch(Event("a", {"total": 1}))
    err = info.value
    assert isinstance(err, DispatchError) and err.key == "name" and err.agents == ["a", "b"]
    assert "'name'" in str(err) and err.result is not None and not err.result.ok
    assert [r.status for r in err.result.runs] == ["ok", "ok"]
    # agreeing writes are no conflict
    runner2 = make_runner(cfg, agents={"a": ca.writes(name="S"), "b": ca.writes(name="S")}).start()
    assert runner2.dispatch(Event("a")).state.get("name") == "S"


def test_a_reducer_that_does_not_fit_the_value_names_key_and_agent(make_runner):
    runner = make_runner(config(collaborative_agents=["a", "b"], merge={"total": "sum"}),
                         agents={"a": ca.writes(total=2), "b": ca.writes(total="three")}).start()
    with pytest.raises(MergeConflictError) as info:
        runner.dispatch(Event("a", {"total": 1}))
    assert "'total'" in str(info.value) and "'b'" in str(info.value) and '"sum"' in str(info.value)


@pytest.mark.parametrize("merge, words", [({"score": "maximum"}, ["score", "maximum", "max"]),
                                          ({"default": "sum"}, ["default", "last_wins"])])
def test_unknown_reducer_is_a_config_error_naming_the_key(merge, words):
    with pytest.raises(ConfigError) as info:
        AgentFlowConfig.from_dict({"orchestration": {"mode": "collaborative", "merge": merge}})
    for word in words:
        assert word in str(info.value)


def test_join_config_is_validated():
    with pytest.raises(ConfigError, match="quorum"):
        AgentFlowConfig.from_dict({"orchestration": {"mode": "collaborative", "join": "quorum"}})
    with pytest.raises(ConfigError, match="quorum"):
        AgentFlowConfig.from_dict({"orchestration": {"mode": "collaborative", "join": "quorum", "quorum": 3,
                                                     "collaborative_agents": ["a", "b"]}})
    with pytest.raises(ConfigError, match="join"):
        AgentFlowConfig.from_dict({"orchestration": {"mode": "collaborative", "join": "most"}})


def _gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_join_first_returns_with_the_fastest_and_really_cancels_a_sync_agent(make_runner, tmp_path):
    runner = make_runner(config(collaborative_agents=["slow", "fast"], join="first"),
                         agents={"slow": ca.sleeps_then_touches, "fast": ca.quick("fast")}).start()
    pidfile, marker = tmp_path / "pid", tmp_path / "late"
    data = {"pidfile": str(pidfile), "marker": str(marker), "slow": 4, "quick_delay": 0.5}
    result = runner.dispatch(Event("fast", data))
    assert result.ok and result.duration < 3  # the slow agent would take 4 s
    assert [(r.agent, r.status) for r in sorted(result.runs, key=lambda r: r.agent)] == [
        ("fast", "ok"), ("slow", "cancelled")]
    assert result.failed_agents == [] and result.state.get("fast") is True and "slow_done" not in result.state
    # the synchronous handler's process was recycled: it cannot finish the cancelled work
    assert pidfile.exists()
    assert _gone(int(pidfile.read_text()), within=10)
    assert not marker.exists()


def test_quorum_cancels_the_rest_and_unstarted_agents_are_cancelled_too(make_runner, tmp_path):
    names = ["a", "b", "c", "d"]
    runner = make_runner(config(collaborative_agents=names, join="quorum", quorum=2, max_concurrency=2),
                         agents={name: ca.quick(name) for name in names}).start()
    result = runner.dispatch(Event("a"))
    assert result.ok
    statuses = {r.agent: r.status for r in result.runs}
    assert statuses == {"a": "ok", "b": "ok", "c": "cancelled", "d": "cancelled"}
    assert result.state.get("a") and result.state.get("b") and "c" not in result.state


def test_quorum_that_can_no_longer_happen_fails(make_runner):
    runner = make_runner(config(collaborative_agents=["x", "y", "z"], join="quorum", quorum=2),
                         agents={"x": ca.fails, "y": ca.fails, "z": ca.quick("z")}).start()
    with pytest.raises(FailureThresholdExceededError, match="quorum") as info:
        runner.dispatch(Event("z"))
    assert sorted(info.value.result.failed_agents) == ["x", "y"]


def test_join_first_in_mixed_then_sequential(make_runner):
    cfg = config(mode="mixed", collaborative_agents=["a", "b"], sequential_agents=["c"], join="first",
                 max_concurrency=1)
    runner = make_runner(cfg, agents={n: ca.quick(n) for n in "abc"}).start()
    result = runner.dispatch(Event("a"))
    assert [(r.agent, r.status, r.phase) for r in result.runs] == [
        ("a", "ok", "collaborative"), ("b", "cancelled", "collaborative"), ("c", "ok", "sequential")]
