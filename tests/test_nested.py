"""Nested flows: `[agents.NAME] flow = "sub.toml"` and `register_agent(NAME, load_config(...))`."""

from __future__ import annotations

import pytest

from actorflow import AgentFailedError, ConfigError, Event, Hook, Runner, State, load_config

pytestmark = pytest.mark.timeout(120)


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def three_levels(tmp_path):
    """sequential → (collaborative team: x | deep) → (loop deep: counter)."""
    top = write(tmp_path / "top.toml", """
[orchestration]
mode = "sequential"
sequential_agents = ["prep", "team", "final"]
retry_attempts = 0
[agents.prep]
handler = "compose_agents:prep"
[agents.team]
flow = "team.toml"
[agents.final]
handler = "compose_agents:final"
""")
    write(tmp_path / "team.toml", """
[orchestration]
mode = "collaborative"
collaborative_agents = ["x", "deep"]
[agents.x]
handler = "compose_agents:x"
[agents.deep]
flow = "sub/deep.toml"
""")
    write(tmp_path / "sub" / "deep.toml", """
[orchestration]
mode = "loop"
loop_agent = "counter"
max_iterations = 5
[agents.counter]
handler = "agents:increments"
""")
    return top


def test_three_levels_across_patterns(ray_session, three_levels):
    cfg = load_config(three_levels)
    assert list(cfg.flows) == ["team"] and list(cfg.flows["team"].flows) == ["deep"]
    with Runner(cfg) as runner:
        event = Event("prep", {"until": 2}, {"session_id": "s-1"})
        result = runner.dispatch(event)
    assert result.ok, result.error
    names = [run.agent for run in result.runs]
    assert names[0] == "prep" and names[-2:] == ["team", "final"]
    assert sorted(names[1:-2]) == ["team/deep", "team/deep/counter", "team/deep/counter", "team/x"]
    assert names.index("team/deep") > max(i for i, n in enumerate(names) if n == "team/deep/counter")
    state = result.state
    assert state.get("count") == 2 and state.get("loop_complete") is True
    assert state.get("trail") == ["prep", "x", "final"]
    assert state.get("x_parent") == event.id and state.get("x_session") == "s-1"
    assert state.get("final_parent") is None  # the parent's own agents see no parent_event_id
    assert "parent_event_id" not in state.meta


def test_register_a_flow_in_code_and_its_failure_is_the_agents_failure(ray_session, tmp_path):
    sub = write(tmp_path / "bad.toml", """
[orchestration]
mode = "sequential"
sequential_agents = ["y", "boom"]
[agents.y]
handler = "compose_agents:y"
[agents.boom]
handler = "compose_agents:fails"
""")
    runner = Runner(retry_attempts=1)
    runner.register_agent("inner", load_config(sub))
    with runner:
        with pytest.raises(AgentFailedError) as info:
            runner.dispatch(Event("inner"))
    result = info.value.result
    assert info.value.agent == "inner" and "boom" in str(info.value)
    assert result.failed_agents == ["inner"]
    statuses = [(run.agent, run.status, run.attempt) for run in result.runs]
    # the sub-flow's runs, path-qualified, then NAME's own failed run (ValueError: not retried)
    assert statuses == [("inner/y", "ok", 1), ("inner/boom", "error", 1), ("inner", "error", 1)]


def test_an_agent_error_callback_recovers_a_failed_flow(ray_session, tmp_path):
    sub = write(tmp_path / "bad.toml", """
[orchestration]
mode = "route"
[agents.boom]
handler = "compose_agents:fails"
""")
    runner = Runner(mode="sequential", sequential_agents=["inner"], retry_attempts=0)
    runner.register_agent("inner", load_config(sub))
    # hooks see the sub-flow's agents too (local names): recover only the flow agent itself
    runner.register_callback(
        Hook.AGENT_ERROR, "recover",
        lambda args: State({"recovered": args.agent_id}) if args.agent_id == "inner" else None,
    )
    with runner:
        result = runner.dispatch(Event("inner"))
    assert result.ok and result.state.get("recovered") == "inner"


def test_a_flow_including_itself_is_rejected_at_load(tmp_path):
    write(tmp_path / "a.toml", '[agents.me]\nflow = "a.toml"\n')
    with pytest.raises(ConfigError, match="includes itself"):
        load_config(tmp_path / "a.toml")
    write(tmp_path / "b.toml", '[agents.c]\nflow = "sub/c.toml"\n')
    write(tmp_path / "sub" / "c.toml", '[agents.back]\nflow = "../b.toml"\n')
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "b.toml")
    assert "b.toml → c.toml → b.toml" in str(info.value)
    write(tmp_path / "d.toml", '[agents.gone]\nflow = "missing.toml"\n')
    with pytest.raises(ConfigError, match="missing.toml"):
        load_config(tmp_path / "d.toml")


def test_serve_loads_several_flows_from_files_or_a_directory(tmp_path):
    from actorflow.serve.flows import flow_name, load_flows

    write(tmp_path / "flows" / "b.toml", '[agents.x]\nhandler = "compose_agents:x"\n')
    write(tmp_path / "flows" / "a.toml", '[agent_flow]\nname = "alpha"\n[agents.y]\nhandler = "compose_agents:y"\n')
    assert [flow_name(c) for c in load_flows([tmp_path / "flows"])] == ["alpha", "b"]
    write(tmp_path / "other" / "b.toml", "")
    with pytest.raises(ConfigError, match="'b'"):
        load_flows([tmp_path / "flows" / "b.toml", tmp_path / "other" / "b.toml"])


def test_visualize_draws_nested_flows_joins_and_chaining(three_levels, tmp_path):
    from actorflow.mermaid import render

    text = render(load_config(three_levels))
    assert 'subgraph flow_team["team: actorflow (collaborative)"]' in text
    assert 'subgraph flow_team_deep["team/deep: actorflow (loop)"]' in text
    assert 'agent_team -.->|"runs"| flow_team' in text and 'team_deep -.->|"runs"| flow_team_deep' in text
    quorum = write(tmp_path / "q.toml", '[orchestration]\nmode = "collaborative"\njoin = "quorum"\nquorum = 2\n'
                   'collaborative_agents = ["a", "b", "c"]\n[orchestration.merge]\nscore = "max"\n')
    assert "join = quorum 2: the rest cancelled<br/>reducers: score = max" in render(load_config(quorum))
    route = write(tmp_path / "r.toml", '[orchestration]\nmax_hops = 3\n[agents.a]\n[agents.b]\n')
    assert 'agent_a -.->|"route changed (max_hops = 3)"| router' in render(load_config(route))


def test_the_flows_deployment_file_builds_its_application(monkeypatch):
    import yaml
    from ray.serve import Application

    from actorflow.serve.app import build_app
    from conftest import REPO

    monkeypatch.chdir(REPO)
    spec = yaml.safe_load((REPO / "deployments" / "flows.yaml").read_text())
    args = spec["applications"][0]["args"]
    assert args["flows"] and isinstance(build_app(args), Application)


def test_a_streamed_nested_dispatch_names_the_sub_flows_agents(ray_session, three_levels):
    with Runner(load_config(three_levels)) as runner:
        updates = list(runner.stream(Event("prep", {"until": 2})))
    finished = [u.agent for u in updates if u.kind == "agent_finished"]
    assert updates[-1].kind == "dispatch_finished" and updates[-1].result.ok
    assert {"team/x", "team/deep/counter", "team/deep", "team", "prep", "final"} <= set(finished)
    assert finished.index("team/x") < finished.index("team") < finished.index("final")
