"""Interrupts (human in the loop): a handler raises `Interrupt`, the dispatch returns interrupted,
`runner.resume` runs the interrupted agent again with the data and continues the pattern,
replaying every run that had finished. Without a journal (in the runner's memory) here (a tolerated
failure also on a journal); with one, across a restart, in test_recovery.py. Side effects are
counted in a file (durable_agents)."""

from __future__ import annotations

import pytest

from actorflow import (
    AgentFlowConfig, DispatchNotFoundError, Event, Hook, Interrupt, Runner,
)

import durable_agents as da

pytestmark = pytest.mark.timeout(120)


def config(**orchestration):
    orchestration.setdefault("retry_attempts", 0)
    orchestration.setdefault("mode", "sequential")
    orchestration.setdefault("sequential_agents", ["a"])
    return AgentFlowConfig.model_validate({"orchestration": orchestration})


@pytest.fixture(scope="module")
def runner(ray_session):
    sub = AgentFlowConfig.model_validate({
        "orchestration": {"mode": "sequential", "sequential_agents": ["s1", "gate"], "retry_attempts": 0},
        "agents": {"s1": {"handler": "durable_agents:s1"}, "gate": {"handler": "durable_agents:gate"}},
    })
    runner = Runner(config(retry_attempts=2, circuit_breaker={"failure_threshold": 1}))
    for name in ("a", "b", "c", "gate", "looper", "slow"):
        runner.register_agent(name, getattr(da, name))
    runner.register_agent("sub", sub)
    runner.start()
    yield runner
    runner.stop(timeout=5)


@pytest.fixture
def log(tmp_path):
    return str(tmp_path / "side-effects.log")


def interrupted(result, agent, reason="needs approval"):
    assert result.interrupted and not result.ok and result.error is None
    assert result.interrupt["agent"] == agent and result.interrupt["reason"] == reason
    return result


def test_sequential_interrupt_and_resume(runner, log):
    event = Event("a", {"log": log, "amount": 7})
    result = interrupted(runner.dispatch(event, mode="sequential", sequential_agents=["a", "gate", "b"]), "gate")
    assert result.interrupt == {"agent": "gate", "reason": "needs approval", "payload": {"amount": 7}}
    assert [(r.agent, r.status) for r in result.runs] == [("a", "ok"), ("gate", "interrupted")]
    assert event.id in runner.pending() and runner.result(event.id).interrupted
    assert runner.wait(event.id).interrupt == result.interrupt

    resumed = runner.resume(event.id, {"approved": True})
    assert resumed.ok and not resumed.interrupted and resumed.interrupt is None
    assert resumed.state.get("trail") == ["a", "gate", "b"] and resumed.state.get("approved") is True
    assert [(r.agent, r.status) for r in resumed.runs] == [("a", "ok"), ("gate", "ok"), ("b", "ok")]
    assert resumed.runs[0] == result.runs[0]  # a replayed: its original run, not run again
    assert da.counts(log) == {"a": 1, "gate": 2, "b": 1}
    assert event.id not in runner.pending()
    with pytest.raises(DispatchNotFoundError):
        runner.resume(event.id)


def test_route_chain_interrupt_and_resume(runner, log):
    event = Event("gate", {"log": log})
    interrupted(runner.dispatch(event, mode="route"), "gate")
    resumed = runner.resume(event.id, {"approved": True})
    assert resumed.ok and resumed.state.get("gate") is True
    assert da.counts(log) == {"gate": 2}


def test_loop_resumes_at_the_interrupted_iteration(runner, log):
    event = Event("looper", {"log": log})
    result = interrupted(runner.dispatch(event, mode="loop", loop_agent="looper"), "looper", "halfway")
    assert result.interrupt["payload"] == {"n": 2}
    resumed = runner.resume(event.id, {"approved": True})
    assert resumed.ok and resumed.state.get("n") == 3 and resumed.iterations == 3
    assert resumed.completion_reason == "loop_complete"
    assert da.counts(log) == {"looper1": 1, "looper2": 2, "looper3": 1}


def test_collaborative_keeps_the_other_branches(runner, log):
    event = Event("a", {"log": log})
    result = runner.dispatch(event, mode="collaborative", collaborative_agents=["a", "gate", "b"])
    interrupted(result, "gate")
    assert da.counts(log) == {"a": 1, "gate": 1, "b": 1}  # the others ran to their end
    resumed = runner.resume(event.id, {"approved": True})
    assert resumed.ok
    assert all(resumed.state.get(name) for name in ("a", "gate", "b"))
    assert da.counts(log) == {"a": 1, "gate": 2, "b": 1}  # their finished work was kept


def test_mixed_interrupt_in_the_sequential_phase(runner, log):
    event = Event("a", {"log": log})
    overrides = dict(mode="mixed", collaborative_agents=["a", "b"], sequential_agents=["gate", "c"])
    interrupted(runner.dispatch(event, **overrides), "gate")
    resumed = runner.resume(event.id, {"approved": True})
    assert resumed.ok and resumed.state.get("trail")[-2:] == ["gate", "c"]
    assert da.counts(log) == {"a": 1, "b": 1, "gate": 2, "c": 1}


def test_nested_flow_interrupt_and_resume(runner, log):
    event = Event("a", {"log": log})
    result = runner.dispatch(event, mode="sequential", sequential_agents=["a", "sub", "c"])
    interrupted(result, "sub/gate")
    assert [(r.agent, r.status) for r in result.runs][-3:] == [("sub/s1", "ok"), ("sub/gate", "interrupted"),
                                                                 ("sub", "interrupted")]
    resumed = runner.resume(event.id, {"approved": True})
    assert resumed.ok and resumed.state.get("trail") == ["a", "s1", "gate", "c"]
    assert da.counts(log) == {"a": 1, "s1": 1, "gate": 2, "c": 1}


@pytest.fixture(scope="module", params=["memory", "journal"])
def failing(request, ray_session, tmp_path_factory):
    """A runner with a failing agent and an AGENT_ERROR callback that logs; in memory, or on a
    SQLite journal (the steps go through their JSON form). No retries, no breaker in the way."""
    journal = f"sqlite:///{tmp_path_factory.mktemp('journal') / 'journal.db'}" if request.param == "journal" else None
    runner = Runner(config(), journal=journal)
    for name in ("a", "gate", "bad"):
        runner.register_agent(name, getattr(da, name))
    runner.register_callback(Hook.AGENT_ERROR, "log-agent-error", da.agent_error)
    runner.start()
    yield runner
    runner.stop(timeout=5)


def test_a_tolerated_failure_is_not_run_again_on_resume(failing, log):
    """A failure no callback recovered is a finished step: replayed on resume (the same error,
    no agent call, no AGENT_ERROR), like the branches that succeeded."""
    event = Event("a", {"log": log})
    overrides = dict(mode="collaborative", collaborative_agents=["bad", "gate", "a"], failure_threshold=0.5)
    result = interrupted(failing.dispatch(event, **overrides), "gate")
    assert da.counts(log) == {"bad": 1, "bad-error": 1, "gate": 1, "a": 1}
    resumed = failing.resume(event.id, {"approved": True})
    assert resumed.ok and resumed.failed_agents == ["bad"]
    assert resumed.state.get_meta("bad_error") == "ValueError: bad agent"
    assert resumed.state.get("gate") is True and resumed.state.get("a") is True
    assert da.counts(log) == {"bad": 1, "bad-error": 1, "gate": 2, "a": 1}
    bad_runs = [run for run in resumed.runs if run.agent == "bad"]
    assert bad_runs == [run for run in result.runs if run.agent == "bad"] and bad_runs[0].status == "error"


def test_an_interrupt_after_a_satisfied_join_is_cancelled(runner, log, tmp_path):
    """join = "first": slow succeeds after gate interrupted; the join is satisfied, so the
    dispatch ends ok and gate's run says cancelled (nothing left to resume)."""
    hold = tmp_path / "hold"
    hold.write_text("")
    event = Event("a", {"log": log, "hold": str(hold)})
    updates = []
    for update in runner.stream(event, mode="collaborative", collaborative_agents=["gate", "slow"], join="first"):
        updates.append(update)
        if update.kind == "agent_finished" and update.agent == "gate":
            hold.unlink()  # slow answers only after gate's interrupt reached the pattern
    result = updates[-1].result
    assert result.ok and not result.interrupted and result.interrupt is None
    assert result.state.get("slow") is True and result.state.get("gate") is None
    assert sorted((run.agent, run.status) for run in result.runs) == [("gate", "cancelled"), ("slow", "ok")]
    assert "join = 'first' was satisfied" in next(run.error for run in result.runs if run.agent == "gate")
    assert event.id not in runner.pending()
    with pytest.raises(DispatchNotFoundError):
        runner.resume(event.id)
    assert da.counts(log) == {"gate": 1, "slow-start": 1, "slow": 1}


def test_stream_ends_with_the_interrupted_result(runner, log):
    event = Event("a", {"log": log})
    updates = list(runner.stream(event, mode="sequential", sequential_agents=["a", "gate"]))
    assert updates[-1].kind == "dispatch_finished"
    interrupted(updates[-1].result, "gate")
    assert runner.resume(event.id, {"approved": True}).ok


def test_interrupt_is_not_a_failure(runner, log, tmp_path):
    """No retry (retry_attempts = 2), no breaker charge (failure_threshold = 1), no AGENT_ERROR."""
    seen = tmp_path / "agent-error"
    runner.register_callback(Hook.AGENT_ERROR, "interrupt-test", lambda args: seen.write_text(args.agent_id))
    for _ in range(2):
        result = interrupted(runner.dispatch(Event("gate", {"log": log}), mode="route"), "gate")
        assert [(r.agent, r.status, r.attempt) for r in result.runs] == [("gate", "interrupted", 1)]
    assert da.counts(log) == {"gate": 2}
    assert next(a for a in runner.agents() if a["name"] == "gate")["circuit"] == "closed"
    assert not seen.exists()


def test_resume_errors(runner):
    with pytest.raises(DispatchNotFoundError) as info:
        runner.resume("no-such-event")
    assert info.value.event_id == "no-such-event"
    with pytest.raises(DispatchNotFoundError):
        runner.wait("no-such-event")
    with pytest.raises(TypeError):
        runner.resume("no-such-event", ["not", "a", "dict"])
    assert runner.result("no-such-event") is None


def test_interrupt_pickles_intact():
    import pickle

    interrupt = Interrupt("why", {"k": [1, 2]})
    again = pickle.loads(pickle.dumps(interrupt))
    assert (again.reason, again.payload, str(again)) == ("why", {"k": [1, 2]}, "why")
