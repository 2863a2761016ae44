"""LLM agents end to end: agent actors call a real OpenAI-compatible server (tests/llm_server.py,
on 127.0.0.1 in this process) over real HTTP through the real `openai` client.

Covers the seed's configurations as shipped, every key, every error class, retries honouring
Retry-After, cancellation of a slow reply by the agent's timeout (the server sees the
connection close), a mixed code + LLM flow, the CLI, and serving an LLM flow over HTTP.
"""

from __future__ import annotations

import http.client
import json
import time

import pytest

from actorflow import AgentFailedError, Event, load_config
from actorflow.cli import main

from conftest import REPO
from benchmarks.chat_server import ChatServer, Fail, Slow, free_port

pytestmark = pytest.mark.timeout(90)

LLM_CONFIGS = REPO / "configs" / "llm"
SECRET = "sk-test-do-not-print-0123456789"


@pytest.fixture(scope="module")
def server():
    with ChatServer() as srv:
        yield srv


@pytest.fixture
def chat(server, monkeypatch):
    """The server, reset, with OLLAMA_HOST pointing at it (as a user would set it)."""
    server.reset()
    monkeypatch.setenv("OLLAMA_HOST", server.url)
    monkeypatch.delenv("ACTORFLOW_ENV", raising=False)
    return server


def llm_config(tmp_path, text):
    path = tmp_path / "agentflow.toml"
    path.write_text(text)
    return load_config(path)


# -- the seed's configurations, as shipped ----------------------------------------------------


SEED_RUNS = {  # file: (entry agent, agents that ran); agentflow.toml runs through the CLI below
    "sequential.toml": ("collector", ["collector", "processor", "validator", "publisher"]),
    "loop.toml": ("quality_improver", ["quality_improver"] * 10),
    "mixed.toml": ("analyzer", ["analyzer", "validator", "enricher", "synthesizer", "formatter", "publisher"]),
}


@pytest.mark.parametrize("name", list(SEED_RUNS))
def test_seed_configuration_runs_through_the_runner(chat, make_runner, name):
    config = load_config(LLM_CONFIGS / name)
    entry, ran = SEED_RUNS[name]
    runner = make_runner(config).start()
    data = {"task": "analyze_market_data", "dataset": "Q4_sales_data.json"}
    result = runner.dispatch(Event(entry, data, {"session_id": "seed-1"}))

    assert result.ok and result.mode == config.orchestration.mode
    assert sorted(run.agent for run in result.runs) == sorted(ran)
    assert all(run.status == "ok" and run.usage["output_tokens"] > 0 and run.usage["input_tokens"] > 0
               for run in result.runs)
    out = result.state
    for agent in set(ran):
        assert out.get(f"{agent}_response").endswith("from gemma3:1b: noted.")
        assert out.get_meta(f"{agent}_model") == "gemma3:1b"
    assert out.get("task") == "analyze_market_data"
    requests = chat.requests
    assert len(requests) == len(ran)
    assert {r.model for r in requests} == {"gemma3:1b"} and all(r.body["stream"] for r in requests)
    assert all(r.body["stream_options"] == {"include_usage": True} and r.body["temperature"] == 0.7 for r in requests)
    systems = {r.message("system") for r in requests}
    for agent in set(ran):
        cfg = config.agents[agent]
        assert f"Your role: {cfg.role}.\n{cfg.system_prompt}" in systems
    if name == "sequential.toml":  # each stage sees the previous stages' replies
        last = json.loads(requests[-1].message("user"))
        assert set(last) >= {"collector_response", "processor_response", "validator_response"}
    if name == "loop.toml":
        assert (result.iterations, result.completion_reason) == (10, "max_iterations")


# -- the call itself, in this process ---------------------------------------------------------


def test_chunks_reach_on_token_and_a_server_without_usage_gives_none(chat):
    import asyncio

    from actorflow import State
    from actorflow.llm import LLMAgent

    settings = load_config(LLM_CONFIGS / "loop.toml").llm_agent("quality_improver")
    agent = LLMAgent(settings)
    chunks: list[str] = []
    agent.on_token = chunks.append
    chat.plan("gemma3:1b", "ok", "no-usage")

    async def twice():
        agent.on_start()
        try:
            return [await agent.run(Event("quality_improver", {}), State({"content": "draft"})) for _ in range(2)]
        finally:
            await agent.on_stop()

    first, second = asyncio.run(twice())
    assert "".join(chunks[:5]) == first.output_state.get("quality_improver_response") == "Reply 1 from gemma3:1b: noted."
    assert first.usage["output_tokens"] == 5 and first.usage["input_tokens"] > 0 and second.usage is None
    assert second.output_state.get("quality_improver_response") == "Reply 2 from gemma3:1b: noted."


def test_the_server_answers_unstreamed_requests_too(chat):
    import openai

    client = openai.OpenAI(api_key="x", base_url=chat.base_url, max_retries=0)
    reply = client.chat.completions.create(model="plain", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "Reply 1 from plain: noted." and reply.usage.prompt_tokens == 1
    client.close()


# -- every key ---------------------------------------------------------------------------------


def test_every_key_reaches_the_server(chat, make_runner, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_LLM_KEY", SECRET)
    config = llm_config(tmp_path, f"""
[llm]
provider = "openai_compatible"
base_url = "{chat.base_url}"
model = "base-model"
temperature = 0.1
max_tokens = 32
top_p = 0.5
frequency_penalty = 0.25
presence_penalty = 0.75
timeout_seconds = 20
api_key_env = "TEST_LLM_KEY"

[orchestration]
mode = "sequential"
sequential_agents = ["writer", "critic"]

[agents.writer]
role = "writer"
system_prompt = "You write."
prompt = "Write about {{topic}} for {{audience}}."
output_key = "draft"

[agents.critic]
system_prompt = "You criticise."
prompt = "Criticise: {{draft}}"

[agents.critic.llm]
provider = "ollama"
model = "critic-model"
temperature = 0.9
""")
    runner = make_runner(config).start()
    result = runner.dispatch(Event("writer", {"topic": "tides", "audience": {"age": 9}}))

    writer, critic = chat.requests
    assert writer.body == {
        "model": "base-model", "stream": True, "stream_options": {"include_usage": True},
        "temperature": 0.1, "max_tokens": 32, "top_p": 0.5, "frequency_penalty": 0.25, "presence_penalty": 0.75,
        "messages": [{"role": "system", "content": "Your role: writer.\nYou write."},
                     {"role": "user", "content": 'Write about tides for {"age": 9}.'}],
    }
    assert writer.headers["authorization"] == f"Bearer {SECRET}"
    # [agents.critic.llm] switches provider: ollama at $OLLAMA_HOST, no key, its own temperature
    assert (critic.model, critic.body["temperature"], critic.body["max_tokens"]) == ("critic-model", 0.9, 32)
    assert critic.headers["authorization"] == "Bearer not-needed"
    assert critic.message("user") == f"Criticise: {result.state.get('draft')}"
    assert result.state.get("draft") == "Reply 1 from base-model: noted."
    assert result.state.get("critic_response") == "Reply 2 from critic-model: noted."
    assert (result.state.get_meta("writer_model"), result.state.get_meta("critic_model")) == ("base-model", "critic-model")
    assert result.runs[0].usage == {"input_tokens": 11, "output_tokens": 5}
    assert result.to_dict()["runs"][0]["usage"] == {"input_tokens": 11, "output_tokens": 5}
    agents = {a["name"]: a for a in runner.agents()}
    assert agents["writer"]["llm"] == {"provider": "openai_compatible", "model": "base-model",
                                       "base_url": chat.base_url, "output_key": "draft"}
    assert SECRET not in json.dumps(agents) + repr(runner) + json.dumps(result.to_dict())


# -- errors ------------------------------------------------------------------------------------


ERRORS_TOML = """
[llm]
provider = "ollama"
model = "fine"

[orchestration]
mode = "route"
retry_attempts = 2

[orchestration.retry]
initial_delay_seconds = 0.01
jitter = false

[orchestration.circuit_breaker]
failure_threshold = 50

[agents.missing]
[agents.missing.llm]
model = "no-such-model"

[agents.locked]
[agents.locked.llm]
model = "locked"
api_key_env = "TEST_LLM_KEY"

[agents.limited]
[agents.limited.llm]
model = "limited"

[agents.flaky]
[agents.flaky.llm]
model = "flaky"

[agents.down]
[agents.down.llm]
base_url = "http://127.0.0.1:{down_port}"

[agents.templated]
prompt = "Summarize {{report}}"

[agents.slow]
timeout_seconds = 0.5
[agents.slow.llm]
model = "slow"

[agents.stalled]
[agents.stalled.llm]
model = "stalled"
timeout_seconds = 0.3
"""


@pytest.fixture(scope="module")
def errors_runner(server, ray_session, tmp_path_factory):
    from actorflow import Runner

    import os

    os.environ["TEST_LLM_KEY"] = SECRET
    os.environ["OLLAMA_HOST"] = server.url
    try:
        path = tmp_path_factory.mktemp("llm-errors") / "agentflow.toml"
        path.write_text(ERRORS_TOML.format(down_port=free_port()))
        runner = Runner(load_config(path)).start()
    finally:
        os.environ.pop("TEST_LLM_KEY")
        os.environ.pop("OLLAMA_HOST")
    yield runner
    runner.stop(timeout=5)


def failed(runner, target, data=None) -> AgentFailedError:
    with pytest.raises(AgentFailedError) as info:
        runner.dispatch(Event(target, data or {}))
    return info.value


def test_unknown_model_names_the_model_and_is_not_retried(server, errors_runner):
    server.reset()
    server.plan("no-such-model", Fail(404))
    err = failed(errors_runner, "missing")
    assert [run.status for run in err.result.runs] == ["error"]
    assert "LLMModelNotFoundError" in err.cause and 'no model "no-such-model"' in err.cause
    assert 'LLM agent "missing"' in str(err)


def test_a_code_handler_cannot_replace_a_running_llm_agent(errors_runner):
    import agents

    with pytest.raises(ValueError, match="already running as an LLM agent"):
        errors_runner.register_agent("missing", agents.returns_dict)


def test_run_without_the_key_variable_is_a_set_up_error(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    path = tmp_path / "agentflow.toml"
    path.write_text('[llm]\nprovider = "openai"\nmodel = "gpt-4o-mini"\n[agents.a]\nsystem_prompt = "Hi."\n')
    assert main(["run", str(path)]) == 2  # before any actor starts
    assert "reads its API key from $OPENAI_API_KEY, which is not set" in capsys.readouterr().err


def test_refused_key_names_its_variable_not_the_key(server, errors_runner):
    server.reset()
    server.plan("locked", Fail(401), Fail(403))
    err = failed(errors_runner, "locked")
    assert len(err.result.runs) == 1 and "LLMAuthenticationError" in err.cause
    assert "HTTP 401" in err.cause and "$TEST_LLM_KEY" in err.cause
    assert server.for_model("locked")[0].headers["authorization"] == f"Bearer {SECRET}"
    assert SECRET not in json.dumps(err.result.to_dict()) + str(err)
    assert "HTTP 403" in failed(errors_runner, "locked").cause


def test_rate_limit_is_retried_after_retry_after(server, errors_runner):
    server.reset()
    server.plan("limited", Fail(429, retry_after=0.4))
    result = errors_runner.dispatch(Event("limited", {}))
    assert [(run.status, run.attempt) for run in result.runs] == [("error", 1), ("ok", 2)]
    assert "LLMRateLimitError" in result.runs[0].error and "retry after 0.4s" in result.runs[0].error
    first, second = server.for_model("limited")
    assert second.at - first.at >= 0.4  # the policy's own delay is 0.01 s


def test_server_errors_are_retried_until_the_retries_run_out(server, errors_runner):
    server.reset()
    server.plan("flaky", Fail(500), Fail(503))
    result = errors_runner.dispatch(Event("flaky", {}))
    assert [run.status for run in result.runs] == ["error", "error", "ok"]
    assert "LLMServerError" in result.runs[0].error and "HTTP 500" in result.runs[0].error
    server.plan("flaky", Fail(502), Fail(502), Fail(502))
    err = failed(errors_runner, "flaky")
    assert [run.attempt for run in err.result.runs] == [1, 2, 3]


def test_unreachable_provider_names_agent_provider_url_and_cause(errors_runner):
    err = failed(errors_runner, "down")
    assert [run.attempt for run in err.result.runs] == [1, 2, 3]  # retryable
    url = errors_runner.config.llm_agent("down").base_url
    assert "LLMConnectionError" in err.cause
    assert f'LLM agent "down" (ollama, model "fine" at {url}): cannot reach the provider: Connect' in err.cause


def test_missing_template_key_fails_once_naming_agent_and_key(server, errors_runner):
    server.reset()
    err = failed(errors_runner, "templated", {"x": 1})
    assert len(err.result.runs) == 1 and "LLMPromptError" in err.cause
    assert 'LLM agent "templated"' in err.cause and "{report}" in err.cause
    assert server.requests == []
    assert errors_runner.dispatch(Event("templated", {"report": "r"})).state.get("templated_response")


def test_agent_timeout_cancels_the_slow_reply(server, errors_runner):
    server.reset()
    server.plan("slow", Slow(30), Slow(30), Slow(30))
    started = time.monotonic()
    err = failed(errors_runner, "slow")
    assert [run.status for run in err.result.runs] == ["timeout"] * 3  # timeouts are retried
    assert time.monotonic() - started < 5
    assert server.disconnected.wait(timeout=5), "the server never saw the client hang up"
    assert errors_runner.dispatch(Event("slow", {})).ok  # the actor is free again


def test_the_clients_own_timeout_is_a_retryable_llm_timeout(server, errors_runner):
    server.reset()
    server.plan("stalled", Slow(5), Slow(5))
    result = errors_runner.dispatch(Event("stalled", {}))
    assert [run.status for run in result.runs] == ["error", "error", "ok"]
    assert "LLMTimeoutError" in result.runs[0].error and "timeout_seconds = 0.3" in result.runs[0].error


def test_llm_agents_take_many_messages_at_once_over_one_client(server, errors_runner):
    server.reset()
    server.latency = 0.5
    for wave in range(2):
        started = time.monotonic()
        futures = [errors_runner.emit(Event("flaky", {"n": i})) for i in range(8)]
        results = [f.result(timeout=30) for f in futures]
        assert all(r.ok for r in results) and time.monotonic() - started < 3  # one at a time: 4 s
    seen = server.for_model("flaky")
    assert len(seen) == 16 and len({r.peer for r in seen}) <= 9  # the second wave reuses connections


# -- code and LLM agents in one flow; the CLI; HTTP --------------------------------------------


def test_code_and_llm_agents_mix(chat, make_runner):
    runner = make_runner(load_config(LLM_CONFIGS / "sales-brief.toml")).start()
    result = runner.dispatch(Event("analyzer", {}))

    assert [(run.agent, run.status) for run in result.runs][-2:] == [("writer", "ok"), ("reviewer", "ok")]
    assert {run.agent: run.usage is None for run in result.runs} == {
        "analyzer": True, "validator": True, "writer": False, "reviewer": False}
    writer, reviewer = chat.requests
    assert '"total_revenue"' in writer.message("user") and '"passed"' in writer.message("user")
    assert (writer.body["max_tokens"], writer.body["temperature"], reviewer.body["temperature"]) == (400, 0.3, 0.0)
    assert reviewer.message("user").endswith(f"Brief: {result.state.get('brief')}\n\nList unsupported claims, or answer OK.")
    assert result.state.get("review") and result.state.get("analysis_result")["orders"] > 0


SEED_AGENTS = {
    "agentflow.toml": ["analyzer", "validator", "processor"],
    "collaborative.toml": ["analyzer", "validator", "processor"],
    "sequential.toml": ["collector", "processor", "validator", "publisher"],
    "loop.toml": ["quality_improver"],
    "mixed.toml": ["analyzer", "validator", "enricher", "synthesizer", "formatter", "publisher"],
}


@pytest.mark.parametrize("name", list(SEED_AGENTS))
def test_cli_validate_lists_the_seed_llm_agents(chat, capsys, name):
    assert main(["validate", str(LLM_CONFIGS / name)]) == 0
    out = capsys.readouterr().out
    assert out.count(f"llm=ollama/gemma3:1b at {chat.base_url}") == len(SEED_AGENTS[name])
    assert f"llm agents: {', '.join(SEED_AGENTS[name])}" in out


def test_cli_runs_the_seed_configuration_verbatim(chat, ray_session, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(["run", str(LLM_CONFIGS / "agentflow.toml"), "--json", "--data", '{"dataset": "q4.csv"}'])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["ok"] and result["mode"] == "collaborative"
    assert {run["agent"] for run in result["runs"]} == {"analyzer", "validator", "processor"}
    assert all(run["usage"]["output_tokens"] == 5 for run in result["runs"])
    assert result["state"]["data"]["processor_response"].endswith("noted.")


def test_serving_an_llm_flow_over_http(chat, ray_session, tmp_path):
    from ray import serve

    from actorflow.serve import application

    config = llm_config(tmp_path, '[llm]\nprovider = "ollama"\nmodel = "served"\n'
                                  '[agents.helper]\nrole = "helper"\nsystem_prompt = "Help."\n')
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    try:
        serve.run(application(config), name="llm", route_prefix="/llm")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        body = json.dumps({"target": "helper", "data": {"q": "tides?"}})
        conn.request("POST", "/llm/v1/dispatch", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        answer = json.loads(response.read())
        assert response.status == 200, answer
        assert answer["state"]["data"]["helper_response"].endswith("from served: noted.")
        assert answer["runs"][0]["usage"]["input_tokens"] > 0
        conn.request("GET", "/llm/v1/agents")
        agents = json.loads(conn.getresponse().read())["agents"]
        assert agents[0]["llm"] == {"provider": "ollama", "model": "served", "base_url": chat.base_url,
                                    "output_key": "helper_response"}
        conn.close()
        assert chat.for_model("served")[0].message("user") == '{"q": "tides?"}'
    finally:
        serve.shutdown()
