"""Metrics through prometheus_client (and Ray's metrics): parsed with prometheus_client's parser."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from actorflow import AgentFlowConfig, Event
from actorflow.runtime.metrics import Metrics

import agents

pytestmark = pytest.mark.timeout(90)


def samples(text: str) -> dict[tuple, float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(parsed, name, **labels):
    return parsed.get((name, tuple(sorted(labels.items()))), 0.0)


def test_runner_metrics_after_real_dispatches(make_runner):
    cfg = AgentFlowConfig.model_validate({"orchestration": {"retry": {
        "max_retries": 1, "initial_delay_seconds": 0.01, "jitter": False, "retryable_errors": ["ValueError"],
    }}})
    runner = make_runner(cfg, agents={"ok": agents.returns_dict, "bad": agents.fails}).start()
    for _ in range(3):
        runner.dispatch(Event("ok"))
    runner.emit(Event("bad")).exception(timeout=30)
    list(runner.stream(Event("ok")))
    parsed = samples(runner.metrics_text())
    assert value(parsed, "actorflow_dispatch_duration_seconds_count", mode="route", outcome="ok") == 4
    assert value(parsed, "actorflow_dispatch_duration_seconds_count", mode="route", outcome="AgentFailedError") == 1
    assert value(parsed, "actorflow_dispatch_duration_seconds_bucket", mode="route", outcome="ok", le="+Inf") == 4
    assert value(parsed, "actorflow_dispatches_total", mode="route", outcome="ok") == 4
    assert value(parsed, "actorflow_agent_runs_total", agent="ok", status="ok") == 4
    assert value(parsed, "actorflow_agent_run_duration_seconds_count", agent="bad", status="error") == 2
    assert value(parsed, "actorflow_retries_total", agent="bad") == 1
    assert ("actorflow_dispatches_in_flight", ()) in parsed and value(parsed, "actorflow_dispatches_in_flight") == 0
    assert value(parsed, "actorflow_circuit_state", agent="ok") == 0
    assert ("actorflow_circuit_state", (("agent", "bad"),)) in parsed


def test_llm_tokens_and_circuit_state_are_counted():
    metrics = Metrics({"writer": "gpt-test"}, ray_export=False)
    metrics.observe_run("writer", "ok", 0.2, {"input_tokens": 12, "output_tokens": 30})
    metrics.observe_run("writer", "ok", 0.1, {"input_tokens": 3, "output_tokens": 0})
    metrics.circuit("writer", "open")
    parsed = samples(metrics.render())
    assert value(parsed, "actorflow_llm_tokens_total", agent="writer", model="gpt-test", direction="input") == 15
    assert value(parsed, "actorflow_llm_tokens_total", agent="writer", model="gpt-test", direction="output") == 30
    assert value(parsed, "actorflow_circuit_state", agent="writer") == 2
    assert value(parsed, "actorflow_agent_run_duration_seconds_count", agent="writer", status="ok") == 2
