"""Route chaining: an output that changes meta `route` goes to that agent next."""

from __future__ import annotations

import pytest

from actorflow import AgentFlowConfig, AgentNotFoundError, DispatchError, Event

import compose_agents as ca

pytestmark = pytest.mark.timeout(90)


def config(**orchestration):
    return AgentFlowConfig.model_validate({"orchestration": {"retry_attempts": 0, **orchestration}})


def test_chain_follows_changed_route_until_it_stays(make_runner):
    runner = make_runner(config(), agents={"a": ca.routes_to("a", "b"), "b": ca.routes_to("b", "c"),
                                           "c": ca.routes_to("c", None)}).start()
    result = runner.dispatch(Event("a"))
    assert result.ok and result.state.get("trail") == ["a", "b", "c"]
    assert [(r.agent, r.status) for r in result.runs] == [("a", "ok"), ("b", "ok"), ("c", "ok")]
    assert result.state.get_meta("route") == "c"
    # an agent that keeps the route it was given ends the chain at once
    assert runner.dispatch(Event("x", metadata={"route": "c"})).state.get("trail") == ["c"]


def test_a_cycle_hits_max_hops_with_the_chain_named(make_runner):
    runner = make_runner(config(max_hops=4), agents={"a": ca.routes_to("a", "b"), "b": ca.routes_to("b", "a")}).start()
    with pytest.raises(DispatchError) as info:
        runner.dispatch(Event("a"))
    assert "max_hops = 4" in str(info.value) and "a → b → a → b → a → …" in str(info.value)
    assert [r.agent for r in info.value.result.runs] == ["a", "b", "a", "b"]
    # a per-event override raises the bound
    with pytest.raises(DispatchError, match="max_hops = 6"):
        runner.dispatch(Event("a"), max_hops=6)


def test_a_chain_to_an_unknown_agent_fails_naming_it(make_runner):
    runner = make_runner(config(), agents={"a": ca.routes_to("a", "ghost")}).start()
    with pytest.raises(AgentNotFoundError, match="ghost"):
        runner.dispatch(Event("a"))
