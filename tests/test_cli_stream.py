"""`actorflow run --stream [--json]` and `--visualize DIR` (run diagrams)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from actorflow.cli import main

CONFIGS = Path(__file__).resolve().parent.parent / "configs"

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ACTORFLOW_ENV", raising=False)
    return tmp_path


def test_stream_json_prints_one_update_per_line(ray_session, in_tmp, capsys):
    assert main(["run", str(CONFIGS / "sequential.toml"), "--stream", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    kinds = [line["kind"] for line in lines]
    assert kinds[0] == "dispatch_started" and kinds[-1] == "dispatch_finished"
    finished = [line["run"]["agent"] for line in lines if line["kind"] == "agent_finished"]
    assert finished == ["collector", "processor", "validator", "publisher"]
    assert lines[-1]["result"]["ok"] is True


def test_stream_prints_readable_lines_and_a_failure_exits_1(ray_session, in_tmp, capsys):
    code = main(["run", str(CONFIGS / "sequential.toml"), "--stream", "--data", '{"dataset": "missing.csv"}'])
    captured = capsys.readouterr()
    assert code == 1
    lines = captured.out.splitlines()
    assert "dispatch_started" in lines[0] and "dispatch_finished" in lines[-1] and "failed" in lines[-1]
    assert any("agent_finished collector error" in line for line in lines)
    assert "dispatch failed" in captured.err


def test_visualize_dir_writes_the_config_and_run_diagrams(ray_session, in_tmp, capsys):
    out = in_tmp / "diagrams-here"
    assert main(["run", str(CONFIGS / "sequential.toml"), "--json", "--visualize", str(out)]) == 0
    result = json.loads(capsys.readouterr().out)
    names = sorted(p.name for p in out.iterdir())
    assert f"run-{result['event_id']}-flowchart.mmd" in names and f"run-{result['event_id']}-gantt.mmd" in names
    assert any(name.endswith("-sequential.mmd") for name in names)  # the config diagram
    flow = (out / f"run-{result['event_id']}-flowchart.mmd").read_text()
    assert "collector<br/>ok" in flow and "publisher<br/>ok" in flow


def test_visualize_flag_with_output_dir_still_works(ray_session, in_tmp, capsys):
    out = in_tmp / "old-style"
    assert main(["run", str(CONFIGS / "route.toml"), "--json", "--visualize", "--visualize-output", str(out)]) == 0
    assert any(p.name.endswith("-gantt.mmd") for p in out.iterdir())


def test_live_progress_shows_each_agent_state_and_elapsed_time():
    import io

    from rich.console import Console

    from actorflow import AgentRun, DispatchResult, DispatchUpdate, State
    from actorflow.progress import AgentBoard, show_live

    result = DispatchResult(State({}), "collaborative", "e", "s", 0.3, [AgentRun("fast", "ok", 0.1)])
    updates = [
        DispatchUpdate("dispatch_started", "e", 0.0),
        DispatchUpdate("agent_started", "e", 0.0, "fast"),
        DispatchUpdate("agent_started", "e", 0.0, "slow"),
        DispatchUpdate("agent_finished", "e", 0.1, "fast", AgentRun("fast", "ok", 0.1)),
    ]
    board = AgentBoard()
    for update in updates:
        board.apply(update)
    console = Console(file=io.StringIO(), force_terminal=True, width=100, color_system=None)
    console.print(board)
    text = console.file.getvalue()
    assert "fast" in text and "ok" in text and "0.10s" in text
    assert "slow" in text and "running" in text
    screen = Console(file=io.StringIO(), force_terminal=True, width=100)
    assert show_live([*updates, DispatchUpdate("dispatch_finished", "e", 0.3, result=result)], screen) is result
