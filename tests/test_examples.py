"""The shipped example agents, called directly (no Ray) and chained as their patterns would be.

Figures are recomputed from the CSV here, independently of `actorflow.examples._sales`.
"""

from __future__ import annotations

import asyncio
import copy
import csv
import importlib
import inspect
import statistics
import tomllib
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from actorflow.events import Event, State
from actorflow.patterns.merge import changes, merge
from actorflow.examples import analysis, pipeline, quality, research, route
from actorflow.examples._sales import DEFAULT_DATASET

pytestmark = pytest.mark.timeout(30)

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
SESSION = "test-session-001"
PLANTED = {(39, "required_fields"), (66, "duplicate"), (91, "non_negative_units"),
           (124, "required_fields"), (157, "price_range")}


# --- helpers -------------------------------------------------------------------------------

def start(target: str, data: dict | None = None) -> tuple[Event, State]:
    """An event and the initial state a dispatch would build from it."""
    event = Event(target, data or {}, {"session_id": SESSION})
    return event, State(copy.deepcopy(dict(event.data)), dict(event.metadata))


def call(handler, event: Event, state: State) -> State:
    """Run a handler as the runtime does: State as is, dict merged into a clone, None unchanged."""
    result = handler(event, state.clone())
    if inspect.isawaitable(result):
        result = asyncio.run(result)
    if result is None:
        return state
    if isinstance(result, dict):
        out = state.clone()
        for key, value in result.items():
            out.set(key, value)
        return out
    assert isinstance(result, State), f"{handler.__name__} returned {type(result).__name__}"
    return result


def sequence(handlers, event: Event, state: State) -> State:
    for handler in handlers:
        state = call(handler, event, state)
    return state


def collaborate(handlers, event: Event, state: State) -> State:
    """Each handler on its own copy, their changes merged by the runtime's own merge."""
    merged, _ = merge(state, [changes(h.__name__, state, call(h, event, state)) for h in handlers])
    return merged


def csv_rows(path: Path = DEFAULT_DATASET) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def revenue(rows, keep=lambda row: True) -> float:
    return round(sum(int(r["units"]) * float(r["unit_price"]) for r in rows if keep(r)), 2)


def money(x: float) -> str:
    return f"{x:,.2f}"


def write_csv(path: Path, rows: list[dict[str, object]]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["date", "region", "product", "units", "unit_price",
                                               "customer_id", "channel"])
        writer.writeheader()
        writer.writerows(rows)
    return path


CLEAN_ROWS = [
    {"date": "2024-01-05", "region": "North", "product": "Widget", "units": 3, "unit_price": "10.00",
     "customer_id": "A1", "channel": "online"},
    {"date": "2024-01-20", "region": "South", "product": "Gadget", "units": 1, "unit_price": "99.50",
     "customer_id": "A2", "channel": "retail"},
    {"date": "2024-02-02", "region": "North", "product": "Gadget", "units": 2, "unit_price": "99.50",
     "customer_id": "A1", "channel": "online"},
]


# --- data ----------------------------------------------------------------------------------

def test_shipped_dataset_has_the_planted_problems():
    rows = csv_rows()
    assert 190 <= len(rows) <= 210
    assert sum(1 for r in rows for v in r.values() if not v.strip()) == 2
    assert sum(1 for r in rows if int(r["units"]) < 0) == 1
    assert sum(1 for r in rows if float(r["unit_price"]) <= 0) == 1
    counts = Counter(tuple(r.values()) for r in rows)
    assert sorted(counts.values(), reverse=True)[:2] == [2, 1]


# --- sequential: the data pipeline ----------------------------------------------------------

def test_pipeline_end_to_end(tmp_path):
    event, state = start("collector", {"output_dir": str(tmp_path / "out")})
    final = sequence([pipeline.collector, pipeline.processor, pipeline.validator, pipeline.publisher],
                     event, state)
    rows = csv_rows()

    assert final.get("raw_data") == [{k: v.strip() for k, v in r.items()} for r in rows]
    processed = final.get("processed_data")
    total = revenue(rows)
    assert processed["total_revenue"] == pytest.approx(total)
    assert processed["total_units"] == sum(int(r["units"]) for r in rows)
    north = revenue(rows, lambda r: r["region"] == "North")
    assert processed["by_region"]["North"]["revenue"] == pytest.approx(north)
    order_revenues = [int(r["units"]) * float(r["unit_price"]) for r in rows]
    assert processed["order_revenue"]["median"] == pytest.approx(statistics.median(order_revenues), abs=0.01)
    assert processed["order_revenue"]["mean"] == pytest.approx(total / len(rows), abs=0.01)
    by_product = defaultdict(float)
    for r in rows:
        by_product[r["product"]] += int(r["units"]) * float(r["unit_price"])
    assert [p["product"] for p in processed["top_products"]] == sorted(by_product, key=by_product.get,
                                                                       reverse=True)[:3]

    validation = final.get("validation_result")
    assert validation["passed"] is False
    assert validation["checked_rows"] == len(rows)
    assert {(i["line"], i["rule"]) for i in validation["issues"]} == PLANTED
    # each planted line really is the problem it is flagged for (line 1 is the header)
    assert rows[91 - 2]["units"] == "-3" and rows[157 - 2]["unit_price"] == "0.00"
    assert rows[66 - 2] == rows[65 - 2]
    assert validation["flagged_revenue"] == pytest.approx(
        revenue([rows[line - 2] for line, _ in PLANTED]))

    published = final.get("publish_result")
    report = Path(published["path"])
    assert report.parent == (tmp_path / "out").resolve() and SESSION in report.name
    assert report.stat().st_size == published["bytes"]
    text = report.read_text()
    for figure in (money(total), money(north), "FAILED", "non_negative_units", "| 157 |"):
        assert figure in text
    assert final.get("pipeline_complete") is True
    assert final.get_meta("stage") == "complete"


@pytest.mark.parametrize("stage, given, missing", [
    (pipeline.processor, {}, "raw_data"),
    (pipeline.validator, {"raw_data": []}, "processed_data"),
    (pipeline.validator, {"processed_data": {}}, "raw_data"),
    (pipeline.publisher, {"validation_result": {}}, "processed_data"),
    (pipeline.validator, {"raw_data": [], "processed_data": {"rows_in": 3}}, "processed_data.*lacks.*total_revenue"),
])
def test_pipeline_stage_fails_without_its_input(stage, given, missing):
    event, _ = start("collector")
    with pytest.raises(ValueError, match=missing):
        call(stage, event, State(given))


def test_publisher_needs_the_validation_result(tmp_path):
    event, state = start("collector", {"output_dir": str(tmp_path)})
    processed = sequence([pipeline.collector, pipeline.processor], event, state)
    with pytest.raises(ValueError, match="no 'validation_result'.*validator must run"):
        call(pipeline.publisher, event, processed)
    assert not list(tmp_path.iterdir())  # nothing published


def test_pipeline_on_a_given_clean_dataset(tmp_path):
    path = write_csv(tmp_path / "q1.csv", CLEAN_ROWS)
    event, state = start("collector", {"dataset": str(path), "output_dir": str(tmp_path)})
    final = sequence([pipeline.collector, pipeline.processor, pipeline.validator], event, state)
    assert final.get("processed_data")["total_revenue"] == pytest.approx(3 * 10 + 99.5 + 2 * 99.5)
    assert final.get("validation_result")["passed"] is True
    assert final.get("validation_result")["issues"] == []


def test_collector_rejects_bad_datasets(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        call(pipeline.collector, *start("collector", {"dataset": str(tmp_path / "nope.csv")}))
    bad = tmp_path / "bad.csv"
    bad.write_text("date,region\n2024-01-01,North\n")
    with pytest.raises(ValueError, match="missing column"):
        call(pipeline.collector, *start("collector", {"dataset": str(bad)}))


# --- loop: the quality improver -------------------------------------------------------------

def run_loop(data: dict | None = None, max_iterations: int = 10) -> tuple[State, list[float]]:
    event, state = start("quality_improver", data)
    scores = []
    for _ in range(max_iterations):
        state = call(quality.quality_improver, event, state)
        scores.append(state.get("quality_score"))
        if state.get("loop_complete"):
            break
    return state, scores


def test_loop_converges_on_the_shipped_draft():
    draft = quality.DRAFT.read_text()
    final, scores = run_loop()
    assert 3 <= len(scores) <= 8
    assert scores[0] < 0.9 <= scores[-1] <= 1.0
    assert all(a < b for a, b in zip(scores, scores[1:]))
    assert quality.quality_score(draft) < scores[0]
    assert final.get("loop_complete") is True and final.get("iteration") == len(scores)
    assert final.get_meta("loop_iteration") == str(len(scores))
    assert final.get_meta("quality_score") == f"{scores[-1]:.2f}"
    edits = final.get("edits")
    assert [e["iteration"] for e in edits] == list(range(1, len(scores) + 1))
    assert [e["score_after"] for e in edits] == scores
    content = final.get("content")
    assert content != draft.strip()
    assert "the the" not in content.lower() and "basically" not in content
    assert "in order to" not in content.lower()
    assert all(s[0].isupper() for s in quality.sentences(content))


def test_loop_honours_target_quality():
    final, scores = run_loop({"target_quality": 0.95})
    assert scores[-1] >= 0.95 and final.get_meta("completion_reason") == "quality_threshold_met"


def test_loop_stops_when_text_is_already_good_or_cannot_improve():
    final, scores = run_loop({"content": "The report is ready. Revenue grew in every region."})
    assert len(scores) == 1 and final.get("edits") == [] and scores[0] >= 0.9
    long_sentence = "Items " + " ".join(f"item{i}" for i in range(40)) + "."  # nowhere to split
    final, scores = run_loop({"content": long_sentence, "target_quality": 1.0})
    assert len(scores) == 1 and final.get_meta("completion_reason") == "no_further_improvement"


def test_quality_score_measures_the_text():
    assert 0.0 <= quality.quality_score(quality.DRAFT.read_text()) < 0.5
    assert quality.quality_score("The the cat sat.") < quality.quality_score("The cat sat.")
    assert quality.quality_score("the cat sat.") < quality.quality_score("The cat sat.")


@pytest.mark.parametrize("data", [{"content": ""}, {"content": 42}, {"target_quality": 1.5},
                                  {"target_quality": "high"}])
def test_loop_rejects_bad_input(data):
    with pytest.raises(ValueError):
        run_loop(data)


# --- collaborative: three perspectives ------------------------------------------------------

def test_collaborative_agents_keep_distinct_keys():
    event, state = start("analyzer")
    merged = collaborate([analysis.analyzer, analysis.validator, analysis.processor], event, state)
    rows = csv_rows()
    for agent, key in (("analyzer", "analysis_result"), ("validator", "validation_result"),
                       ("processor", "processing_result")):
        assert key in merged and merged.get_meta(f"{agent}_complete") == "true"

    result = merged.get("analysis_result")
    december = revenue(rows, lambda r: r["date"].startswith("2024-12"))
    months = {m["month"]: m["revenue"] for m in result["months"]}
    assert list(months) == [f"2024-{m:02d}" for m in range(7, 13)]
    assert months["2024-12"] == pytest.approx(december)
    assert sum(months.values()) == pytest.approx(revenue(rows), abs=0.05)
    assert result["trend"]["direction"] == "upward" and result["best_month"] == "2024-12"
    assert result["top_region"] == "North"

    assert {(i["line"], i["rule"]) for i in merged.get("validation_result")["issues"]} == PLANTED

    segments = merged.get("processing_result")
    assert segments["channels"]["online"]["revenue"] == pytest.approx(
        revenue(rows, lambda r: r["channel"] == "online"))
    customers = {r["customer_id"] for r in rows if r["customer_id"]}
    assert segments["customers"]["count"] == len(customers)
    assert segments["customers"]["unattributed_orders"] == 1
    assert sum(s["customers"] for s in segments["customers"]["segments"].values()) == len(customers)


# --- mixed: the research report -------------------------------------------------------------

def test_mixed_research_report(tmp_path):
    event, state = start("analyzer", {"output_dir": str(tmp_path)})
    merged = collaborate([research.analyzer, research.validator, research.enricher], event, state)
    final = sequence([research.synthesizer, research.formatter, research.publisher], event, merged)
    rows = csv_rows()

    west = lambda month: revenue(rows, lambda r: r["region"] == "West" and r["date"].startswith(month))  # noqa: E731
    growth = round(100 * (west("2024-12") - west("2024-07")) / west("2024-07"), 1)
    enrichment = final.get("enrichment_result")
    assert enrichment["regions"]["West"]["growth_pct"] == pytest.approx(growth)
    share = round(100 * revenue(rows, lambda r: r["region"] == "South") / revenue(rows), 1)
    assert enrichment["regions"]["South"]["revenue_share_pct"] == pytest.approx(share)

    report = final.get("synthesized_report")
    assert money(revenue(rows)) in report["executive_summary"]
    assert any(f"+{growth}%" in f and "West" in f for f in report["key_findings"])
    assert any("39, 66, 91, 124, 157" in r for r in report["recommendations"])
    assert report["data_sources"] == ["analysis_result", "validation_result", "enrichment_result"]

    text = final.get("formatted_report")
    assert text.startswith("# Sales research report: 2024-07 to 2024-12")
    assert Path(final.get("publish_result")["path"]).read_text() == text
    assert final.get("report_published") is True
    assert final.get_meta("synthesis_complete") == "true"


def test_synthesizer_needs_the_collaborative_outputs():
    event, _ = start("synthesizer")
    with pytest.raises(ValueError, match="validation_result.*enrichment_result"):
        call(research.synthesizer, event, State({"analysis_result": {}}))
    empty = State({"analysis_result": {}, "validation_result": {}, "enrichment_result": {}})
    with pytest.raises(ValueError, match="'analysis_result' lacks orders"):
        call(research.synthesizer, event, empty)
    with pytest.raises(ValueError, match="synthesized_report"):
        call(research.formatter, event, State())
    with pytest.raises(ValueError, match="formatted_report"):
        call(research.publisher, event, State())


# --- route: single requests -----------------------------------------------------------------

def test_route_processor_writes_a_clean_csv(tmp_path):
    event, state = start("processor", {"task": "process_data", "output_dir": str(tmp_path)})
    result = call(route.processor, event, state).get("cleaning_result")
    rows = csv_rows()
    clean = csv_rows(Path(result["output"]))
    assert result["rows_in"] == len(rows) and result["rows_out"] == len(clean) == len(rows) - len(PLANTED)
    assert result["revenue_after"] == pytest.approx(revenue(clean))
    assert result["revenue_before"] == pytest.approx(revenue(rows))
    with pytest.raises(ValueError, match="process_data"):
        call(route.processor, *start("processor", {"task": "dance"}))


def test_route_analyzer_answers_a_query():
    event, state = start("analyzer", {"group_by": "product", "metric": "units", "top": 2})
    answer = call(route.analyzer, event, state).get("query_result")
    units = Counter()
    for r in csv_rows():
        units[r["product"]] += int(r["units"])
    assert [(row["product"], row["units"]) for row in answer["rows"]] == units.most_common(2)
    assert answer["total"] == sum(units.values())
    with pytest.raises(ValueError, match="group_by"):
        call(route.analyzer, *start("analyzer", {"group_by": "weather"}))


# --- configs --------------------------------------------------------------------------------

def load_toml(name: str) -> dict:
    with (CONFIGS / name).open("rb") as f:
        return tomllib.load(f)


def handler_of(spec: str):
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


@pytest.mark.parametrize("name, mode, lists", [
    ("route.toml", "route", {}),
    ("collaborative.toml", "collaborative", {"collaborative_agents": ["analyzer", "validator", "processor"]}),
    ("sequential.toml", "sequential",
     {"sequential_agents": ["collector", "processor", "validator", "publisher"]}),
    ("loop.toml", "loop", {"loop_agent": "quality_improver", "max_iterations": 10}),
    ("mixed.toml", "mixed", {"collaborative_agents": ["analyzer", "validator", "enricher"],
                             "sequential_agents": ["synthesizer", "formatter", "publisher"]}),
])
def test_configs_point_at_real_handlers(name, mode, lists):
    config = load_toml(name)
    assert config["llm"] == {"provider": "ollama", "model": "gemma3:1b", "temperature": 0.7}
    orchestration = config["orchestration"]
    assert orchestration["mode"] == mode
    assert {k: orchestration[k] for k in lists} == lists
    agents = config["agents"]
    if mode == "route":
        assert list(agents) == ["analyzer", "processor"]  # the default route target reads only
    named = orchestration.get("collaborative_agents", []) + orchestration.get("sequential_agents", [])
    named += [orchestration["loop_agent"]] if "loop_agent" in orchestration else []
    assert set(named) <= set(agents)
    for agent in agents.values():
        assert agent["enabled"] is True and agent["role"] and agent["system_prompt"] and agent["capabilities"]
        assert callable(handler_of(agent["handler"]))


def simulate(config: dict, tmp_path: Path) -> State:
    """Run a config's pattern with empty event data, as `actorflow run CONFIG` would (no Ray)."""
    orchestration = config["orchestration"]
    handlers = {name: handler_of(agent["handler"]) for name, agent in config["agents"].items()}
    mode = orchestration["mode"]
    event, state = start(next(iter(config["agents"])) if mode == "route" else "entry")
    if mode == "route":
        return call(handlers[event.target], event, state)
    if mode == "loop":
        for _ in range(orchestration["max_iterations"]):
            state = call(handlers[orchestration["loop_agent"]], event, state)
            if state.get("loop_complete"):
                break
        return state
    if mode in ("collaborative", "mixed"):
        state = collaborate([handlers[n] for n in orchestration["collaborative_agents"]], event, state)
    if mode in ("sequential", "mixed"):
        state = sequence([handlers[n] for n in orchestration["sequential_agents"]], event, state)
    return state


@pytest.mark.parametrize("name, key", [("route.toml", "query_result"),
                                       ("collaborative.toml", "processing_result"),
                                       ("sequential.toml", "pipeline_complete"),
                                       ("loop.toml", "loop_complete"),
                                       ("mixed.toml", "report_published")])
def test_configs_run_with_empty_event_data(name, key, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # default output_dir is relative: actorflow-output/
    final = simulate(load_toml(name), tmp_path)
    assert final.get(key)
    assert all(p.parent.name == "actorflow-output" for p in tmp_path.rglob("*.*"))


@pytest.mark.parametrize("env, mode, timeout", [("development", "route", 10), ("staging", "collaborative", 30),
                                                ("production", "mixed", 60)])
def test_environment_layers(env, mode, timeout, tmp_path, monkeypatch):
    layer = load_toml(f"environments/{env}.toml")
    assert list(layer) == ["orchestration"]
    assert layer["orchestration"]["mode"] == mode and layer["orchestration"]["timeout_seconds"] == timeout
    base = load_toml("mixed.toml")
    config = {**base, "orchestration": {**base["orchestration"], **layer["orchestration"]}}
    monkeypatch.chdir(tmp_path)
    final = simulate(config, tmp_path)
    expected = {"route": "analysis_result", "collaborative": "validation_result", "mixed": "report_published"}
    assert final.get(expected[mode])
    if env == "staging":
        assert layer["orchestration"]["collaborative_agents"] == ["analyzer", "validator"]
        assert "enrichment_result" not in final
