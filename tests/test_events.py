"""Event and State: the values that cross actor boundaries."""

import pickle

import pytest

from actorflow import AgentRun, DispatchResult, Event, State

pytestmark = pytest.mark.timeout(30)


def test_event_defaults_and_session_id():
    event = Event("a", {"x": 1})
    assert event.id and event.timestamp.tzinfo is not None
    assert event.session_id == event.id
    assert Event("a", metadata={"session_id": "s"}).session_id == "s"


def test_event_is_immutable_for_the_caller():
    data = {"nested": [1]}
    event = Event("a", data)
    data["nested"].append(2)
    assert event.data["nested"] == [1]
    with pytest.raises(TypeError):
        event.data["new"] = 1  # type: ignore[index]
    with pytest.raises(AttributeError):
        event.target = "b"  # type: ignore[misc]


def test_event_and_state_pickle_by_value():
    event = Event("a", {"x": [1]}, {"k": "v"}, source="test")
    assert pickle.loads(pickle.dumps(event)) == event
    state = State({"x": {"y": 1}}, {"m": "1"})
    assert pickle.loads(pickle.dumps(state)) == state


def test_state_clone_is_deep_and_merge_lets_other_win():
    state = State({"list": [1], "keep": 1}, {"m": "a"})
    clone = state.clone()
    clone.get("list").append(2)
    clone.set_meta("m", "b")
    assert state.get("list") == [1] and state.get_meta("m") == "a"
    state.merge(State({"keep": 2, "new": 3}, {"m": "c"}))
    assert state.to_dict() == {"data": {"list": [1], "keep": 2, "new": 3}, "meta": {"m": "c"}}
    assert State.from_dict(state.to_dict()) == state


def test_state_meta_values_are_strings():
    state = State()
    state.set_meta("n", 3)
    assert state.get_meta("n") == "3" and state.meta_keys() == ["n"] and "n" not in state


def test_dispatch_result_round_trips_through_dict():
    result = DispatchResult(State({"a": 1}), "loop", "e", "s", 0.5, [AgentRun("x", "ok", 0.1, iteration=1)],
                            iterations=1, completion_reason="loop_complete")
    assert DispatchResult.from_dict(result.to_dict()) == result
