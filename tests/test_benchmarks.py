"""The benchmark harness keeps working: one tiny configuration, checked for structure, not speed."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.timeout(120)

FIELDS = (
    "p50_ms",
    "p99_ms",
    "throughput_eps_c1",
    "throughput_eps_c32",
    "raw_ray_p50_ms",
    "langgraph_p50_ms",
    "ideal_ms",
    "overhead_ratio_vs_raw_ray",
)


def test_a_tiny_run_reports_every_field(ray_session, tmp_path):
    from benchmarks import harness, langgraph_baseline, report

    settings = harness.Settings(
        modes=("collaborative",), workloads=("io",), samples={"io": 3}, warmup=1, concurrency=4, throughput_seconds=0.2
    )
    doc = harness.run(settings)

    assert ray_session.is_initialized(), "the harness must reuse the session's Ray and leave it running"
    assert set(doc["patterns"]) == {"collaborative"} and set(doc["patterns"]["collaborative"]) == {"io"}
    row = doc["patterns"]["collaborative"]["io"]
    assert set(FIELDS) <= set(row)
    measured = [row[key] for key in FIELDS if key != "langgraph_p50_ms"]
    assert all(isinstance(value, (int, float)) and value > 0 for value in measured), row
    assert row["p99_ms"] >= row["p50_ms"]
    assert row["ideal_ms"] == 50.0  # four 50 ms waits in parallel
    assert row["overhead_ratio_vs_raw_ray"] == pytest.approx(row["p50_ms"] / row["raw_ray_p50_ms"], rel=0.01)
    assert row["actor_processes"] == 5  # four agents and the supervisor
    if langgraph_baseline.available():
        assert row["langgraph_p50_ms"] > 0
    else:
        assert row["langgraph_p50_ms"] is None
    assert {"cpu", "cores", "python", "ray"} <= set(doc["machine"])

    json.loads(json.dumps(doc))  # what --json writes
    table = report.markdown(doc)
    assert "| collaborative | io |" in table
    checks = {check["target"]: check for check in report.targets(doc)}
    assert checks["io collaborative: p50 ÷ ideal ≤ 1.2"]["measured"] is not None
    assert checks["noop collaborative: p50 ÷ raw Ray ≤ 1.3"]["met"] is None  # noop was not run


def test_actorflow_bench_is_the_benchmark_cli(capsys):
    from actorflow.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--quick" in out and "--json" in out and "--plot" in out


def test_the_llm_benchmark_reports_both_levels(ray_session):
    from benchmarks import llm

    doc = llm.run(seconds=0.4, warmup=1, levels=(1, 2))

    assert ray_session.is_initialized()
    assert set(doc["levels"]) == {"c1", "c2"}
    for row in doc["levels"].values():
        assert row["actorflow_p50_ms"] >= 50 and row["direct_p50_ms"] >= 50  # the server's fixed latency
        assert row["p50_ratio"] == pytest.approx(row["actorflow_p50_ms"] / row["direct_p50_ms"], rel=0.01)
        assert row["throughput_ratio"] > 0 and row["actorflow_samples"] > 0
    assert "| 2 |" in llm.markdown(doc)
    json.loads(json.dumps(doc))


def test_concurrency_report_names_every_issue_14_goal_and_judges_it_by_its_ratio():
    from benchmarks import concurrency

    def level(defaults: float, errors: int) -> dict:
        rates = {"actorflow defaults": defaults, "actorflow tuned": 100.0, "raw Ray direct": 200.0,
                 "raw Ray supervisor": 100.0}
        systems = {name: {"dispatches_per_s": rate, "errors": [errors if name == "actorflow defaults" else 0],
                          "error_kinds": []} for name, rate in rates.items()}
        return {"systems": systems, "load": "1.0 1.0 1.0", **concurrency._ratios(systems)}

    doc = {
        "levels": [32, 1024], "rounds": 1, "agent_sleep_s": 0.05, "load": {"start": "1", "end": "1"},
        "throughput": {"route": {"32": level(50.0, 0), "1024": level(95.0, 0)},
                       "collaborative": {"32": level(150.0, 0), "1024": level(80.0, 3)}},
        "noop_route": {"p50_ms": {"actorflow": 1.1, "raw Ray supervisor": 1.0}, "p50_ratio": 1.1,
                       "cpu_us_per_dispatch": {"actorflow": {"supervisor": 130.0, "agent": 1.0, "driver": 1.0},
                                               "raw Ray supervisor": {"supervisor": 100.0, "agent": 1.0, "driver": 1.0}},
                       "supervisor_cpu_ratio": 1.3, "load": "1"},
    }
    met = {row["goal"]: row["met"] for row in concurrency.goals(doc)}
    assert met == {
        "route: errors with defaults at 1024": True,
        "route: defaults vs raw Ray direct at 1024": False,  # 95 / 200
        "route: defaults vs raw-Ray supervisor at 1024": True,  # 95 / 100
        "collaborative: errors with defaults at 1024": False,
        "collaborative: defaults vs raw Ray direct at 1024": False,
        "collaborative: defaults vs raw-Ray supervisor at 1024": False,  # 80 / 100
        "no-op route p50 vs raw-Ray supervisor": True,
        "supervisor CPU per dispatch vs raw-Ray supervisor": False,
    }
    doc["goals"] = concurrency.goals(doc)
    table = concurrency.markdown(doc)
    assert "| route | 1024 | 95 | 100 | 200 | 100 | 0.47 | 0.95 |" in table
    assert "| collaborative | 1024 | 80 ([3]) |" in table
