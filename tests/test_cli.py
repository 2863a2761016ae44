"""The `actorflow` command: run every shipped config, validate, exit codes, JSON output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from actorflow.cli import main

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "configs"

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # reports land in tmp_path/actorflow-output
    monkeypatch.delenv("ACTORFLOW_ENV", raising=False)
    return tmp_path


def run_json(capsys, *argv):
    code = main(["run", *argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else None


@pytest.mark.parametrize(
    "name, agents",
    [
        ("route", ["analyzer"]),
        ("collaborative", ["analyzer", "validator", "processor"]),
        ("sequential", ["collector", "processor", "validator", "publisher"]),
        ("loop", ["quality_improver"]),
        ("mixed", ["analyzer", "validator", "enricher", "synthesizer", "formatter", "publisher"]),
    ],
)
def test_every_shipped_config_runs(ray_session, in_tmp, capsys, name, agents):
    code, result = run_json(capsys, str(CONFIGS / f"{name}.toml"))
    assert code == 0 and result["ok"] is True and result["mode"] == name
    assert sorted({r["agent"] for r in result["runs"]}) == sorted(agents)
    assert all(r["status"] == "ok" for r in result["runs"])
    if name == "loop":
        assert result["completion_reason"] == "loop_complete" and 3 <= result["iterations"] <= 8
    if name in ("sequential", "mixed"):
        assert Path(result["state"]["data"]["publish_result"]["path"]).is_file()


def test_orchestration_flags_override_the_file(ray_session, in_tmp, capsys):
    code, result = run_json(
        capsys, str(CONFIGS / "mixed.toml"), "--orchestration-mode", "sequential",
        "--sequential-agents", "analyzer,validator", "--meta", "session_id=s-1",
    )
    assert code == 0 and result["mode"] == "sequential" and result["session_id"] == "s-1"
    assert [r["agent"] for r in result["runs"]] == ["analyzer", "validator"]


def test_env_layer_selects_the_staging_orchestration(ray_session, in_tmp, capsys):
    code, result = run_json(capsys, str(CONFIGS / "mixed.toml"), "--env", "staging")
    assert code == 0 and result["mode"] == "collaborative"
    assert sorted(r["agent"] for r in result["runs"]) == ["analyzer", "validator"]


def test_failed_dispatch_exits_1_with_the_partial_result(ray_session, in_tmp, capsys):
    code = main(["run", str(CONFIGS / "sequential.toml"), "--json", "--data", '{"dataset": "missing.csv"}'])
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert code == 1 and result["ok"] is False
    assert result["state"]["data"]["failed_stage"] == "collector"
    assert "dispatch failed" in captured.err


def test_readable_summary_without_json(ray_session, in_tmp, capsys):
    assert main(["run", str(CONFIGS / "loop.toml")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok: loop dispatch") and "quality_improver" in out and "final state:" in out


def test_validate_prints_the_wiring(capsys):
    assert main(["validate", str(CONFIGS / "mixed.toml")]) == 0
    out = capsys.readouterr().out
    assert "mode:     mixed" in out and "[analyzer | validator | enricher] -> synthesizer -> formatter -> publisher" in out


def test_validate_names_a_misspelled_key_and_its_fix(tmp_path, capsys):
    bad = tmp_path / "agentflow.toml"
    bad.write_text('[orchestration]\nmode = "route"\ntimeout_secnds = 5\n')
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "orchestration.timeout_secnds" in err and "timeout_seconds" in err and str(bad) in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--data", "{not json"], "not valid JSON"),
        (["--data", "[1, 2]"], "must be a JSON object"),
        (["--meta", "novalue"], "key=value"),
        (["--target", "ghost"], "'ghost' is not an agent"),
        (["--failure-threshold", "1.5"], "failure_threshold"),
        (["--orchestration-mode", "loop"], "loop_agent"),
    ],
)
def test_usage_errors_exit_2(capsys, argv, message):
    assert main(["run", str(CONFIGS / "route.toml"), *argv]) == 2
    assert message in capsys.readouterr().err


def test_cli_refuses_agents_without_handlers(tmp_path, capsys):
    cfg = tmp_path / "agentflow.toml"
    cfg.write_text('[orchestration]\nmode = "sequential"\nsequential_agents = ["collector"]\n')
    assert main(["run", str(cfg)]) == 2
    assert "no handler for agent(s) collector" in capsys.readouterr().err


def test_visualize_writes_mermaid(tmp_path, capsys):
    assert main(["visualize", str(CONFIGS / "sequential.toml"), "--output", str(tmp_path)]) == 0
    assert "flowchart" in capsys.readouterr().out
    assert list(tmp_path.glob("*.mmd"))


def test_installed_command_runs_on_embedded_ray(tmp_path):
    """The README's main job, end to end in a fresh process: its own embedded Ray, JSON on stdout."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "ACTORFLOW_ENV")}
    proc = subprocess.run(
        [sys.executable, "-m", "actorflow", "run", str(CONFIGS / "mixed.toml"), "--json"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=100,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["ok"] is True and len(result["runs"]) == 6
