"""Hooks: order, state replacement, aborting, recovery — run in the supervisor."""

from __future__ import annotations

import pytest

from actorflow import AgentFailedError, AgentFlowConfig, CallbackArgs, Event, Hook, State

import agents

pytestmark = pytest.mark.timeout(90)


def config(**orchestration):
    orchestration.setdefault("retry_attempts", 0)
    return AgentFlowConfig.model_validate({"orchestration": orchestration})


def trace(label):
    """A callback that appends `label:hook:agent` to meta `trace` of the state it passes on."""

    def callback(args: CallbackArgs):
        state = args.state.clone()
        entry = f"{label}:{args.hook.value}:{args.agent_id or '-'}"
        state.set_meta("trace", ";".join(filter(None, [state.get_meta("trace", ""), entry])))
        return state

    return callback


def test_hook_order_and_state_replacement(make_runner):
    runner = make_runner(config(mode="sequential", sequential_agents=["a", "b"]), agents={"a": agents.tag("a"), "b": agents.tag("b")})
    runner.register_callback(Hook.ALL, "all", trace("all"))
    for hook in (Hook.BEFORE_EVENT_HANDLING, Hook.BEFORE_AGENT_RUN, Hook.AFTER_AGENT_RUN, Hook.AFTER_EVENT_HANDLING):
        runner.register_callback(hook, "own", trace("own"))
    runner.start()
    result = runner.dispatch(Event("a"))
    steps = result.state.get_meta("trace").split(";")
    assert steps == [
        "own:before_event_handling:-", "all:before_event_handling:-",
        "own:before_agent_run:a", "all:before_agent_run:a",
        "own:after_agent_run:a", "all:after_agent_run:a",
        "own:before_agent_run:b", "all:before_agent_run:b",
        "own:after_agent_run:b", "all:after_agent_run:b",
        "own:after_event_handling:-", "all:after_event_handling:-",
    ]


def test_duplicate_callback_name_is_rejected(make_runner):
    runner = make_runner()
    runner.register_callback(Hook.AGENT_ERROR, "x", trace("x"))
    runner.register_callback(Hook.AFTER_AGENT_RUN, "x", trace("x"))  # other hook: fine
    with pytest.raises(ValueError, match="already registered"):
        runner.register_callback(Hook.AGENT_ERROR, "x", trace("x"))


def test_before_agent_run_replaces_the_agents_input(make_runner):
    def inject(args):
        state = args.state.clone()
        state.set("injected", args.agent_id)
        return state

    runner = make_runner(agents={"a": agents.returns_none})
    runner.register_callback(Hook.BEFORE_AGENT_RUN, "inject", inject)
    result = runner.start().dispatch(Event("a"))
    assert result.state.get("injected") == "a"


def test_before_event_handling_raising_aborts_the_dispatch(make_runner):
    def veto(args):
        raise PermissionError("not today")

    runner = make_runner(agents={"a": agents.tag("a")})
    runner.register_callback(Hook.BEFORE_EVENT_HANDLING, "veto", veto)
    runner.start()
    with pytest.raises(PermissionError, match="not today") as info:
        runner.dispatch(Event("a"))
    assert info.value.result.runs == [] and not info.value.result.ok


def test_before_agent_run_raising_fails_that_run(make_runner):
    def refuse(args):
        if args.agent_id == "b":
            raise RuntimeError("refused")

    cfg = config(mode="collaborative", collaborative_agents=["a", "b"], failure_threshold=0.5)
    runner = make_runner(cfg, agents={"a": agents.tag("a"), "b": agents.tag("b")})
    runner.register_callback(Hook.BEFORE_AGENT_RUN, "refuse", refuse)
    result = runner.start().dispatch(Event("a"))
    assert result.failed_agents == ["b"]
    assert "refused" in result.state.get_meta("b_error")
    assert not result.state.get("b")


def test_agent_error_recovers_a_sequential_failure(make_runner):
    def recover(args):
        state = args.state.clone()
        state.set("recovered_from", str(args.error))
        return state

    cfg = config(mode="sequential", sequential_agents=["a", "bad", "c"])
    runner = make_runner(cfg, agents={"a": agents.tag("a"), "bad": agents.fails, "c": agents.tag("c")})
    runner.register_callback(Hook.AGENT_ERROR, "recover", recover)
    result = runner.start().dispatch(Event("a"))
    assert result.ok and result.state.get("trail") == ["a", "c"]
    assert "bad input" in result.state.get("recovered_from")
    assert result.failed_agents == []
    assert [(r.agent, r.status) for r in result.runs] == [("a", "ok"), ("bad", "error"), ("c", "ok")]


def test_agent_error_recovery_in_collaborative_is_not_a_failure(make_runner):
    cfg = config(mode="collaborative", collaborative_agents=["a", "bad"], failure_threshold=0.0)
    runner = make_runner(cfg, agents={"a": agents.tag("a"), "bad": agents.fails})
    runner.register_callback(Hook.AGENT_ERROR, "fallback", lambda args: State({"fallback": args.agent_id}))
    result = runner.start().dispatch(Event("a"))
    assert result.ok and result.failed_agents == []
    assert result.state.get("fallback") == "bad" and result.state.get("a") is True


@pytest.mark.parametrize("callback_returns", ["none", "raise"])
def test_agent_error_without_a_state_leaves_the_failure(make_runner, callback_returns, tmp_path):
    log = tmp_path / "agent_error.log"  # callbacks run in the supervisor's process: they report through a file

    def observe(args):
        with open(log, "a") as f:
            f.write(f"{args.agent_id}\n")
        if callback_returns == "raise":
            raise RuntimeError("callback broke")
        return None

    cfg = config(mode="sequential", sequential_agents=["bad"])
    runner = make_runner(cfg, agents={"bad": agents.fails})
    runner.register_callback(Hook.AGENT_ERROR, "observe", observe)
    with pytest.raises(AgentFailedError) as info:
        runner.start().dispatch(Event("bad"))
    assert log.read_text().split() == ["bad"]  # once per failed agent run, after retries
    assert info.value.result.failed_agents == ["bad"]


def test_after_agent_run_replaces_output_and_after_event_sees_errors(make_runner):
    def stamp(args):
        state = args.state.clone()
        state.set("stamped", args.agent_result.duration >= 0)
        return state

    def final(args):
        state = args.state.clone()
        state.set("error_seen", None if args.error is None else type(args.error).__name__)
        return state

    runner = make_runner(agents={"a": agents.tag("a"), "bad": agents.fails}, retry_attempts=0)
    runner.register_callback(Hook.AFTER_AGENT_RUN, "stamp", stamp)
    runner.register_callback(Hook.AFTER_EVENT_HANDLING, "final", final)
    runner.start()
    ok = runner.dispatch(Event("a"))
    assert ok.state.get("stamped") is True and ok.state.get("error_seen") is None
    with pytest.raises(AgentFailedError) as info:
        runner.dispatch(Event("bad"))
    assert info.value.result.state.get("error_seen") == "AgentFailedError"


def test_callbacks_registered_after_start_take_effect(make_runner):
    runner = make_runner(agents={"a": agents.tag("a")}).start()
    assert runner.dispatch(Event("a")).state.get_meta("late") is None
    runner.register_callback(Hook.AFTER_EVENT_HANDLING, "late", lambda args: State(args.state.to_dict()["data"], {"late": "yes"}))
    assert runner.dispatch(Event("a")).state.get_meta("late") == "yes"
