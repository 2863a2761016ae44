"""OpenTelemetry tracing, received by a real OTLP/HTTP receiver in this process.

The runners are started with `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` pointing at the receiver and
the variables removed again right after (the runner hands them to its actors through Ray's
runtime_env: the session's Ray was started without them). One traced runner for the module:
a sequential pipeline of a code agent, an LLM agent (the fake chat server) and a nested flow.
"""

from __future__ import annotations

import http.client
import json
import os
import sys

import pytest

from actorflow import ActorflowError, AgentFlowConfig, ConfigError, Event, Runner, load_config, tracing

from benchmarks.chat_server import ChatServer, free_port
from benchmarks.otlp_receiver import OTLPReceiver

pytestmark = pytest.mark.timeout(120)

PIPELINE_TOML = """
[orchestration]
mode = "sequential"
sequential_agents = ["first", "writer", "team"]
[agents.first]
handler = "agents:reports_tracing"
[agents.writer]
system_prompt = "Write."
[agents.writer.llm]
provider = "openai_compatible"
model = "tracer-model"
base_url = "{base_url}"
[agents.team]
flow = "team.toml"
"""

TEAM_TOML = """
[orchestration]
mode = "sequential"
sequential_agents = ["inner"]
[agents.inner]
handler = "agents:reports_tracing"
"""

PARENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def traceparent(span_id: str, trace_id: str = PARENT_TRACE) -> str:
    return f"00-{trace_id}-{span_id}-01"


@pytest.fixture(scope="module")
def receiver():
    with OTLPReceiver() as rec:
        yield rec


@pytest.fixture(scope="module")
def chat():
    with ChatServer() as server:
        yield server


def otel_variables(receiver: OTLPReceiver, mp: pytest.MonkeyPatch) -> None:
    """The exporter settings a user would export, with a short batch delay for the test."""
    mp.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", receiver.endpoint)
    mp.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    mp.delenv("OTEL_SERVICE_NAME", raising=False)


@pytest.fixture(scope="module")
def config(tmp_path_factory, chat):
    folder = tmp_path_factory.mktemp("tracing")
    (folder / "agentflow.toml").write_text(PIPELINE_TOML.format(base_url=chat.base_url))
    (folder / "team.toml").write_text(TEAM_TOML)
    return load_config(folder / "agentflow.toml")


@pytest.fixture(scope="module")
def traced(ray_session, receiver, config):
    with pytest.MonkeyPatch.context() as mp:
        otel_variables(receiver, mp)
        runner = Runner(config).start()
    assert not any(key.startswith("OTEL_") for key in os.environ)  # nothing leaks into other tests
    yield runner
    runner.stop(timeout=10)


def spans_of(receiver: OTLPReceiver, trace_id: str, count: int) -> dict[str, object]:
    """The trace's spans by name (agent spans as `agent:<name>`), once `count` have arrived."""

    def named(spans):
        found = {}
        for span in spans:
            if span.trace_id == trace_id:
                key = f"agent:{span.attributes['actorflow.agent']}" if span.name == "actorflow.agent" else span.name
                found[key] = span
        return found if len(found) >= count else None

    return receiver.wait_for(named)


def test_a_dispatch_is_a_trace_of_spans_from_every_process(traced, receiver, chat):
    result = traced.dispatch(Event("first", {"topic": "tides"}))
    assert result.ok, result.error
    assert len(result.trace_id) == 32 and int(result.trace_id, 16) and result.trace_id == result.trace_id.lower()
    assert result.state.get_meta("trace_id") == result.trace_id

    spans = spans_of(receiver, result.trace_id, 6)
    dispatch, first, writer = spans["actorflow.dispatch"], spans["agent:first"], spans["agent:writer"]
    team, inner, chat_span = spans["agent:team"], spans["agent:team/inner"], spans["chat tracer-model"]
    assert dispatch.parent_span_id == ""
    assert dispatch.attributes == {"actorflow.mode": "sequential", "actorflow.event_id": result.event_id,
                                   "actorflow.session_id": result.session_id}
    assert not dispatch.failed and dispatch.resource["service.name"] == "actorflow"
    # agent spans: children of the dispatch span, made in the agents' own processes
    for span in (first, writer, team):
        assert span.parent_span_id == dispatch.span_id
        assert span.attributes["actorflow.attempt"] == 1 and span.attributes["actorflow.status"] == "ok"
    assert first.resource["process.pid"] != dispatch.resource["process.pid"]
    assert first.resource["actorflow.agent"] == "first"
    assert writer.resource["process.pid"] not in (first.resource["process.pid"], dispatch.resource["process.pid"])
    # the nested flow's attempt is a span in the supervisor; its agents' spans are its children
    assert team.resource["process.pid"] == dispatch.resource["process.pid"]
    assert inner.parent_span_id == team.span_id
    assert inner.resource["process.pid"] == result.state.get("pid")  # the last agent wrote its pid
    assert inner.resource["process.pid"] not in (first.resource["process.pid"], dispatch.resource["process.pid"])
    # the LLM call: a GenAI span under the LLM agent's span, with the usage the server reported
    usage = next(run.usage for run in result.runs if run.agent == "writer")
    assert chat_span.parent_span_id == writer.span_id
    assert chat_span.resource["process.pid"] == writer.resource["process.pid"]
    assert chat_span.attributes == {
        "gen_ai.operation.name": "chat", "gen_ai.system": "openai_compatible",
        "gen_ai.provider.name": "openai_compatible", "gen_ai.request.model": "tracer-model",
        "server.address": "127.0.0.1", "gen_ai.response.model": "tracer-model",
        "gen_ai.usage.input_tokens": usage["input_tokens"], "gen_ai.usage.output_tokens": usage["output_tokens"],
    }
    assert usage["output_tokens"] > 0


def test_a_failed_dispatch_and_agent_have_error_status(traced, receiver):
    with pytest.raises(ActorflowError) as caught:
        traced.dispatch(Event("first", {"fail": True}))
    result = caught.value.result
    assert not result.ok and result.trace_id
    spans = spans_of(receiver, result.trace_id, 2)
    dispatch, first = spans["actorflow.dispatch"], spans["agent:first"]
    assert dispatch.failed and dispatch.status_message == result.error
    assert first.failed and first.attributes["actorflow.status"] == "error"
    assert "asked to fail" in first.status_message


def test_a_given_traceparent_is_the_dispatch_spans_parent(traced, receiver):
    result = traced.dispatch(Event("first"), traceparent=traceparent("00f067aa0ba902b7"), mode="route")
    assert result.trace_id == PARENT_TRACE
    spans = spans_of(receiver, PARENT_TRACE, 2)
    assert spans["actorflow.dispatch"].parent_span_id == "00f067aa0ba902b7"
    assert spans["actorflow.dispatch"].attributes["actorflow.mode"] == "route"
    # streamed dispatches carry it too
    updates = list(traced.stream(Event("first"), traceparent=traceparent("00f067aa0ba902b8", "ab" * 16), mode="route"))
    assert updates[-1].result.trace_id == "ab" * 16
    assert spans_of(receiver, "ab" * 16, 2)["actorflow.dispatch"].parent_span_id == "00f067aa0ba902b8"


def test_http_traceparent_makes_the_dispatch_span_its_child(ray_session, receiver, tmp_path):
    from ray import serve

    from actorflow.serve import application

    (tmp_path / "agentflow.toml").write_text('[agents.first]\nhandler = "agents:reports_tracing"\n')
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    try:
        with pytest.MonkeyPatch.context() as mp:
            otel_variables(receiver, mp)
            app = application(load_config(tmp_path / "agentflow.toml"))  # hands the variables to the replica
        serve.run(app, name="traced", route_prefix="/traced")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        body = json.dumps({"target": "first", "data": {}})
        trace_ids = {"/traced/v1/dispatch": "cd" * 16, "/traced/v1/dispatch/stream": "ef" * 16}
        for path, trace_id in trace_ids.items():
            conn.request("POST", path, body, {"Content-Type": "application/json",
                                              "traceparent": traceparent("b7ad6b7169203331", trace_id)})
            response = conn.getresponse()
            text = response.read().decode()
            assert response.status == 200, text
            assert f'"trace_id": "{trace_id}"' in text or f'"trace_id":"{trace_id}"' in text
            spans = spans_of(receiver, trace_id, 2)
            assert spans["actorflow.dispatch"].parent_span_id == "b7ad6b7169203331"
            assert spans["agent:first"].parent_span_id == spans["actorflow.dispatch"].span_id
        conn.close()
    finally:
        serve.shutdown()


def test_tracing_off_costs_nothing_and_sends_nothing(make_runner, receiver, monkeypatch):
    for key in [key for key in os.environ if key.startswith("OTEL_")]:
        monkeypatch.delenv(key)
    runner = make_runner(agents={"first": "agents:reports_tracing"}).start()
    result = runner.dispatch(Event("first"))
    assert result.trace_id is None and result.state.get_meta("trace_id") is None
    assert result.to_dict()["trace_id"] is None
    # the agent's process: no OpenTelemetry tracing imported, nothing set up, no OTEL variables
    assert result.state.get("otel_sdk_imported") is False
    assert result.state.get("traced") is False and result.state.get("otel_env") == []
    runner.stop()  # (with tracing on, stop() exports what is buffered: see the tests above)
    assert not [span for span in receiver.spans if span.attributes.get("actorflow.event_id") == result.event_id]


def test_tracing_on_is_decided_by_config_and_the_standard_variables():
    assert not tracing.requested(False, {})
    assert tracing.requested(True, {})
    assert tracing.requested(False, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert tracing.requested(False, {"OTEL_TRACES_EXPORTER": "console"})
    assert not tracing.requested(True, {"OTEL_SDK_DISABLED": "true"})
    assert not tracing.requested(False, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"})
    assert tracing.otel_env({"OTEL_SERVICE_NAME": "svc", "PATH": "/bin"}) == {"OTEL_SERVICE_NAME": "svc"}


def test_the_observability_section_is_validated():
    assert AgentFlowConfig.from_dict({"observability": {"tracing": True}}).observability.tracing
    with pytest.raises(ConfigError, match=r"unknown key observability\.tracng \(did you mean observability\.tracing\?\)"):
        AgentFlowConfig.from_dict({"observability": {"tracng": True}})


def test_tracing_without_the_otel_extra_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)  # as if not installed
    runner = Runner(AgentFlowConfig.from_dict({"observability": {"tracing": True}}))
    with pytest.raises(ConfigError, match=r"pip install 'actorflow\[otel\]'"):
        runner.start()
    assert not runner.started


def test_a_recycled_process_exports_its_spans_before_it_is_killed(ray_session, receiver, tmp_path):
    # A long batch delay: spans leave an agent's process only when it flushes them.
    with pytest.MonkeyPatch.context() as mp:
        otel_variables(receiver, mp)
        mp.setenv("OTEL_BSP_SCHEDULE_DELAY", "60000")
        runner = Runner(AgentFlowConfig.model_validate({"orchestration": {"retry_attempts": 0}}))
        runner.register_agent("s", "agents:blocks_until_killed", max_concurrency=1, timeout_seconds=1.0)
        runner.start()
    try:
        done = runner.dispatch(Event("s", {"sleep": 0, "started": str(tmp_path / "done")}))
        with pytest.raises(ActorflowError):  # overruns its timeout: the process is recycled
            runner.dispatch(Event("s", {"sleep": 60, "started": str(tmp_path / "overrun")}))
        wanted = {done.trace_id}

        def agent_spans(spans):
            found = [s for s in spans if s.name == "actorflow.agent" and s.attributes["actorflow.agent"] == "s"]
            return found if {s.trace_id for s in found} >= wanted and len(found) >= 2 else None

        spans = receiver.wait_for(agent_spans, timeout=30)
        assert [s.attributes["actorflow.status"] for s in spans if s.trace_id == done.trace_id] == ["ok"]
        assert {s.attributes["actorflow.status"] for s in spans if s.trace_id != done.trace_id} == {"cancelled"}
    finally:
        runner.stop(timeout=10)
