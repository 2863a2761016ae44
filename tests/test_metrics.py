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


class _Recorded:
    """Stands in for a `ray.util.metrics` object: keeps every call it gets."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float, dict | None]] = []

    def inc(self, value, tags=None):
        self.calls.append(("inc", value, tags))

    def set(self, value, tags=None):
        self.calls.append(("set", value, tags))

    def observe(self, value, tags=None):
        self.calls.append(("observe", value, tags))


def test_ray_counters_and_gauges_reach_ray_in_aggregate_within_the_flush_delay():
    import asyncio

    from actorflow.runtime.metrics import RAY_FLUSH_SECONDS, _RayExport

    sinks = {name: _Recorded() for name in ("dispatches", "dispatches_in_flight", "dispatch_duration_seconds")}
    export = _RayExport(sinks)

    async def record() -> None:
        for in_flight in (1, 2, 1, 0):
            export.set("dispatches_in_flight", in_flight, None)
        for outcome in ("ok", "ok", "ValueError"):
            export.inc("dispatches", 1, {"mode": "route", "outcome": outcome})
            export.observe("dispatch_duration_seconds", 0.01, {"mode": "route", "outcome": outcome})
        assert sinks["dispatches"].calls == [] and sinks["dispatches_in_flight"].calls == []  # not yet
        assert len(sinks["dispatch_duration_seconds"].calls) == 3  # histograms take every value at once
        await asyncio.sleep(RAY_FLUSH_SECONDS + 0.2)

    asyncio.run(record())
    assert sinks["dispatches_in_flight"].calls == [("set", 0, None)]
    assert sinks["dispatches"].calls == [("inc", 2, {"mode": "route", "outcome": "ok"}),
                                         ("inc", 1, {"mode": "route", "outcome": "ValueError"})]
    export.inc("dispatches", 1, {"mode": "route", "outcome": "ok"})  # no event loop: at once
    assert sinks["dispatches"].calls[-1] == ("inc", 1, {"mode": "route", "outcome": "ok"})
