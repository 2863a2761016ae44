"""Resilience under real faults: retries, timeouts, breakers, killed processes, full mailboxes."""

from __future__ import annotations

import os
import signal
import time

import pytest

from actorflow import (
    ActorflowError,
    AgentFailedError,
    AgentFlowConfig,
    CircuitOpenError,
    DispatchTimeoutError,
    Event,
    MailboxFullError,
)

import agents

pytestmark = pytest.mark.timeout(90)

FAST_RETRY = {"initial_delay_seconds": 0.01, "max_delay_seconds": 0.05, "jitter": False}


def config(retries=3, breaker=None, **orchestration):
    orchestration["retry"] = {**FAST_RETRY, "max_retries": retries}
    if breaker:
        orchestration["circuit_breaker"] = breaker
    return AgentFlowConfig.model_validate({"orchestration": orchestration})


def wait_for(predicate, timeout=20.0, what="condition"):
    """Poll a condition the runtime makes true (a file appears, a breaker changes state)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def circuit(runner, agent):
    return next(a["circuit"] for a in runner.agents() if a["name"] == agent)


# -- retries ----------------------------------------------------------------------------------


def test_retryable_failure_is_retried_until_it_succeeds(make_runner):
    runner = make_runner(config(retries=3), agents={"flaky": agents.Flaky}).start()
    result = runner.dispatch(Event("flaky", {"fail_times": 2, "error": "ConnectionError"}))
    assert result.ok and result.state.get("calls") == 3
    assert [(r.status, r.attempt) for r in result.runs] == [("error", 1), ("error", 2), ("ok", 3)]
    assert "ConnectionError: flaky call 1" in result.runs[0].error


def test_retries_stop_at_max_retries(make_runner):
    runner = make_runner(config(retries=1), agents={"flaky": agents.Flaky}).start()
    with pytest.raises(AgentFailedError) as info:
        runner.dispatch(Event("flaky", {"fail_times": 5, "error": "TimeoutError"}))
    assert [r.attempt for r in info.value.result.runs] == [1, 2]


def test_non_retryable_error_fails_at_the_first_attempt(make_runner):
    runner = make_runner(config(retries=3), agents={"flaky": agents.Flaky}).start()
    with pytest.raises(AgentFailedError) as info:
        runner.dispatch(Event("flaky", {"fail_times": 1, "error": "KeyError"}))
    assert [(r.status, r.attempt) for r in info.value.result.runs] == [("error", 1)]


def test_retryable_by_base_class_name(make_runner, tmp_path):
    runner = make_runner(config(retries=2), agents={"glitch": agents.glitches_once}).start()
    result = runner.dispatch(Event("glitch", {"marker": str(tmp_path / "m")}))
    assert result.state.get("recovered") and [r.attempt for r in result.runs] == [1, 2]


def test_backoff_is_exponential_and_capped():
    from actorflow.runtime.retry import RetryPolicy

    policy = RetryPolicy(initial_delay=0.1, backoff_factor=2.0, max_delay=0.5, jitter=False)
    assert [policy.delay(n) for n in (1, 2, 3, 4, 5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    jittered = RetryPolicy(initial_delay=1.0, jitter=True)
    assert all(0.5 <= jittered.delay(1) <= 1.0 for _ in range(50))


# -- timeouts ---------------------------------------------------------------------------------


@pytest.mark.parametrize("handler", [agents.async_sleeps, agents.sleeps], ids=["async", "sync"])
def test_agent_timeout_frees_the_mailbox(make_runner, handler):
    runner = make_runner(config(retries=0))
    runner.register_agent("slow", handler, timeout_seconds=0.5, max_concurrency=1)
    runner.start()
    with pytest.raises(AgentFailedError) as info:
        runner.dispatch(Event("slow", {"sleep": 60}))
    assert [r.status for r in info.value.result.runs] == ["timeout"]
    assert "timeout_seconds = 0.5" in info.value.result.runs[0].error
    # the hung call no longer holds the one-message mailbox: the next call is answered
    assert runner.emit(Event("slow", {"sleep": 0})).result(timeout=20).state.get("slept")


def test_agent_timeouts_are_retried(make_runner):
    runner = make_runner(config(retries=1))
    runner.register_agent("slow", agents.async_sleeps, timeout_seconds=0.3)
    runner.start()
    with pytest.raises(AgentFailedError) as info:
        runner.dispatch(Event("slow", {"sleep": 60}))
    assert [(r.status, r.attempt) for r in info.value.result.runs] == [("timeout", 1), ("timeout", 2)]


def test_orchestration_deadline_cancels_outstanding_calls(make_runner):
    cfg = config(retries=0, mode="collaborative", collaborative_agents=["fast", "hung"], timeout_seconds=1.0)
    runner = make_runner(cfg)
    runner.register_agent("fast", agents.tag("fast"))
    runner.register_agent("hung", agents.async_sleeps)
    runner.start()
    with pytest.raises(DispatchTimeoutError) as info:
        runner.dispatch(Event("fast", {"sleep": 60}))
    result = info.value.result
    assert sorted((r.agent, r.status) for r in result.runs) == [("fast", "ok"), ("hung", "cancelled")]
    assert "timeout_seconds = 1.0" in str(info.value)
    # the runner keeps serving, and the cancelled agent's mailbox is free again
    follow_up = runner.emit(Event("fast", {"sleep": 0}))
    assert follow_up.result(timeout=20).ok


# -- circuit breaker --------------------------------------------------------------------------


def test_breaker_opens_fails_fast_then_half_open_trial_closes_it(make_runner):
    breaker = {"failure_threshold": 2, "reset_timeout_seconds": 1.0, "half_open_successes": 1}
    runner = make_runner(config(retries=0, breaker=breaker), agents={"s": agents.switchable}).start()
    for _ in range(2):
        with pytest.raises(AgentFailedError):
            runner.dispatch(Event("s", {"fail": True}))
    assert circuit(runner, "s") == "open"

    with pytest.raises(CircuitOpenError) as info:
        runner.dispatch(Event("s"))  # would succeed, but is not even sent
    run = info.value.result.runs[0]
    assert run.status == "circuit_open" and info.value.agent == "s"

    wait_for(lambda: circuit(runner, "s") == "half_open", what="half-open")
    assert runner.dispatch(Event("s")).ok  # the trial call goes through
    assert circuit(runner, "s") == "closed"


def test_failed_half_open_trial_reopens_the_breaker(make_runner):
    breaker = {"failure_threshold": 1, "reset_timeout_seconds": 0.5, "half_open_successes": 2}
    runner = make_runner(config(retries=0, breaker=breaker), agents={"s": agents.switchable}).start()
    with pytest.raises(AgentFailedError):
        runner.dispatch(Event("s", {"fail": True}))
    wait_for(lambda: circuit(runner, "s") == "half_open", what="half-open")
    with pytest.raises(AgentFailedError) as info:
        runner.dispatch(Event("s", {"fail": True}))
    assert info.value.result.runs[0].status == "error"  # the trial reached the agent
    assert circuit(runner, "s") == "open"


def test_open_breaker_counts_against_the_failure_threshold(make_runner):
    breaker = {"failure_threshold": 1, "reset_timeout_seconds": 60}
    cfg = config(retries=0, breaker=breaker, mode="collaborative", collaborative_agents=["s", "ok"], failure_threshold=0.0)
    runner = make_runner(cfg, agents={"s": agents.switchable, "ok": agents.tag("ok")}).start()
    with pytest.raises(ActorflowError):
        runner.dispatch(Event("ok", {"fail": True}))
    with pytest.raises(ActorflowError) as info:
        runner.dispatch(Event("ok"))
    assert info.value.result.failed_agents == ["s"]
    assert info.value.result.state.get_meta("s_error").startswith("CircuitOpenError: circuit breaker for agent 's' is open")


# -- supervision: killed processes ----------------------------------------------------------------


def test_agent_killed_mid_call_is_retried_on_the_restarted_actor(make_runner, tmp_path):
    runner = make_runner(config(retries=2), agents={"worker": agents.blocks_until_killed}).start()
    started = tmp_path / "started"
    future = runner.emit(Event("worker", {"started": str(started), "sleep": 1.0}))
    marker = wait_for(lambda: next(iter(tmp_path.glob("started.*")), None), what="the call to start")
    victim = int(marker.suffix[1:])
    os.kill(victim, signal.SIGKILL)
    result = future.result(timeout=60)
    assert result.ok and result.state.get("pid") != victim
    assert [(r.status, r.attempt) for r in result.runs] == [("error", 1), ("ok", 2)]
    assert "died" in result.runs[0].error


def test_agent_that_cannot_come_back_is_reported_not_hung(make_runner, tmp_path):
    runner = make_runner(config(retries=2))
    runner.register_agent("mortal", agents.blocks_until_killed, max_restarts=0)
    runner.start()
    future = runner.emit(Event("mortal", {"started": str(tmp_path / "started"), "sleep": 30}))
    marker = wait_for(lambda: next(iter(tmp_path.glob("started.*")), None), what="the call to start")
    os.kill(int(marker.suffix[1:]), signal.SIGKILL)
    with pytest.raises(AgentFailedError) as info:
        future.result(timeout=60)
    assert info.value.agent == "mortal" and "died" in info.value.cause
    with pytest.raises(AgentFailedError):  # and later calls fail at once too
        runner.dispatch(Event("mortal", {"started": str(tmp_path / "again"), "sleep": 0}))


def test_supervisor_death_is_reported_and_recovered(make_runner, tmp_path):
    runner = make_runner(config(retries=0), agents={"worker": agents.blocks_until_killed}).start()
    old = runner.supervisor_pid
    future = runner.emit(Event("worker", {"started": str(tmp_path / "started"), "sleep": 1.0}))
    wait_for(lambda: next(iter(tmp_path.glob("started.*")), None), what="the call to start")
    os.kill(old, signal.SIGKILL)
    with pytest.raises(ActorflowError, match="supervisor actor died"):
        future.result(timeout=60)
    assert runner.dispatch(Event("worker", {"started": str(tmp_path / "after"), "sleep": 0})).ok
    assert runner.supervisor_pid not in (None, old)


# -- bounded mailbox ------------------------------------------------------------------------------


def test_full_mailbox_fails_fast_with_mailbox_full(make_runner):
    runner = make_runner(config(retries=3))
    runner.register_agent("narrow", agents.async_sleeps, mailbox_size=2, max_concurrency=1)
    runner.start()
    futures = [runner.emit(Event("narrow", {"sleep": 0.5})) for _ in range(6)]
    outcomes = []
    for future in futures:
        try:
            outcomes.append(future.result(timeout=30).ok)
        except MailboxFullError as err:
            outcomes.append("full")
            assert err.result.runs[0].attempt == 1 and len(err.result.runs) == 1  # not retried
    assert "full" in outcomes and True in outcomes and len(outcomes) == 6


def test_an_agent_whose_restarts_are_used_up_fails_for_good_and_charges_the_breaker(make_runner):
    runner = make_runner(config(retries=3, breaker={"failure_threshold": 1}))
    runner.register_agent("s", agents.switchable, max_restarts=1)
    runner.start()
    [pid] = {a["name"]: a["pids"] for a in runner.agents()}["s"]
    os.kill(pid, signal.SIGKILL)
    result = runner.dispatch(Event("s"))  # the restart (1 of 1) brings it back; the call is retried
    assert result.ok and result.runs[-1].status == "ok"
    os.kill(result.state.get("pid"), signal.SIGKILL)  # no restart left
    with pytest.raises(AgentFailedError) as info:
        runner.dispatch(Event("s"))
    assert [r.status for r in info.value.result.runs] == ["error"]  # not retried: it cannot come back
    assert circuit(runner, "s") == "open"
