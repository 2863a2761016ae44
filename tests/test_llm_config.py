"""LLM agents in agentflow.toml, without Ray: which agents they are, resolved settings and
defaults, set-up mistakes as ConfigErrors, prompt rendering, and the key kept out of sight."""

from __future__ import annotations

import textwrap

import pytest

from actorflow.config import AgentFlowConfig, load_config
from actorflow.exceptions import ConfigError
from actorflow.llm import LLMAgent, LLMPromptError, read_api_key, render_messages
from actorflow.runtime.handlers import agent_concurrency

from conftest import REPO

pytestmark = pytest.mark.timeout(30)

SEED_LLM = REPO / "configs" / "llm"


def load(tmp_path, text, name="agentflow.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return load_config(path)


def config_error(tmp_path, text) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return str(info.value)


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    monkeypatch.delenv("ACTORFLOW_ENV", raising=False)


# -- which agents are LLM agents, and their settings -------------------------------------------


def test_the_seed_example_makes_llm_agents_with_the_default_ollama_host():
    cfg = load_config(SEED_LLM / "agentflow.toml")
    agents = cfg.llm_agents()
    assert list(agents) == ["analyzer", "validator", "processor"]
    s = agents["analyzer"]
    assert (s.provider, s.model, s.temperature) == ("ollama", "gemma3:1b", 0.7)
    assert s.base_url == "http://localhost:11434/v1"  # ollama's OpenAI-compatible API
    assert (s.role, s.system_prompt) == ("data_analyzer", "You analyze data for patterns and insights.")
    assert (s.prompt, s.output_key, s.api_key_env) == (None, "analyzer_response", None)
    assert cfg.warnings == []


@pytest.mark.parametrize("host, url", [("http://10.0.0.5:11434", "http://10.0.0.5:11434/v1"),
                                       ("localhost:9999", "http://localhost:9999/v1"),
                                       ("http://h:1/v1/", "http://h:1/v1")])
def test_ollama_host_is_read_where_the_config_is_loaded(monkeypatch, host, url):
    monkeypatch.setenv("OLLAMA_HOST", host)
    cfg = load_config(SEED_LLM / "collaborative.toml")
    monkeypatch.delenv("OLLAMA_HOST")  # agent actors need no environment of their own
    assert cfg.llm_agent("analyzer").base_url == url
    assert cfg.with_overrides(mode="route").llm_agent("validator").base_url == url


def test_every_key_and_per_agent_overrides(tmp_path):
    cfg = load(tmp_path, """\
        [llm]
        provider = "openai"
        model = "gpt-4o-mini"
        temperature = 0.2
        max_tokens = 64
        top_p = 0.9
        frequency_penalty = 0.5
        presence_penalty = -0.5
        timeout_seconds = 12
        [agents.writer]
        role = "writer"
        system_prompt = "Write."
        prompt = "Topic: {topic}"
        output_key = "draft"
        [agents.local]
        [agents.local.llm]
        provider = "vllm"
        base_url = "http://gpu-box:8000/v1"
        model = "qwen"
        api_key_env = "VLLM_KEY"
        [agents.coded]
        handler = "agents:returns_dict"
        [agents.off]
        enabled = false
        """)
    assert sorted(cfg.llm_agents()) == ["local", "writer"]  # a handler or enabled = false: no
    w = cfg.llm_agent("writer")
    assert (w.base_url, w.api_key_env) == ("https://api.openai.com/v1", "OPENAI_API_KEY")
    assert (w.temperature, w.max_tokens, w.top_p, w.timeout_seconds) == (0.2, 64, 0.9, 12)
    assert (w.frequency_penalty, w.presence_penalty, w.prompt, w.output_key) == (0.5, -0.5, "Topic: {topic}", "draft")
    loc = cfg.llm_agent("local")
    assert (loc.provider, loc.kind, loc.model, loc.base_url) == ("vllm", "openai_compatible", "qwen", "http://gpu-box:8000/v1")
    assert (loc.api_key_env, loc.temperature, loc.max_tokens) == ("VLLM_KEY", 0.2, 64)  # the rest from [llm]


def test_no_provider_means_no_llm_agents():
    cfg = load_config(REPO / "configs" / "mixed.toml")  # [llm] set, but every agent has a handler
    assert cfg.llm_agents() == {}
    assert AgentFlowConfig.from_dict({"agents": {"a": {"system_prompt": "x"}}}).llm_agents() == {}


# -- set-up mistakes ---------------------------------------------------------------------------


def test_missing_model_names_the_file_key_and_agents(tmp_path):
    message = config_error(tmp_path, """\
        [llm]
        provider = "ollama"
        [agents.a]
        system_prompt = "x"
        [agents.b]
        """)
    assert str(tmp_path / "agentflow.toml") in message and "llm.model" in message
    assert 'provider "ollama" needs a model' in message and '"a", "b"' in message


def test_unknown_provider_suggests_the_closest(tmp_path):
    message = config_error(tmp_path, '[llm]\nprovider = "olama"\nmodel = "m"\n')
    assert str(tmp_path / "agentflow.toml") in message and 'llm.provider = "olama"' in message
    assert 'did you mean "ollama"' in message and "openai_compatible" in message


@pytest.mark.parametrize("provider", ["openai_compatible", "vllm", "lmstudio", "llamacpp"])
def test_openai_compatible_needs_a_base_url(tmp_path, provider):
    message = config_error(tmp_path, f'[agents.a.llm]\nprovider = "{provider}"\nmodel = "m"\n')
    assert "agents.a.llm.base_url" in message and "http://localhost:8000/v1" in message


def test_the_key_itself_is_never_quoted_back(tmp_path):
    message = config_error(tmp_path, '[llm]\nprovider = "openai"\nmodel = "m"\napi_key_env = "sk-live-abc123"\n')
    assert "llm.api_key_env" in message and "sk-live-abc123" not in message


def test_a_missing_key_variable_is_a_config_error_naming_it(monkeypatch):
    settings = AgentFlowConfig.from_dict({"llm": {"provider": "openai", "model": "m"}, "agents": {"a": {}}}).llm_agent("a")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match=r"\$OPENAI_API_KEY, which is not set"):
        read_api_key(settings)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-1")
    key = read_api_key(settings)
    agent = LLMAgent(settings, key)
    assert key.reveal() == "sk-secret-1"
    assert "sk-secret-1" not in repr(key) + str(key) + repr(agent) + repr(settings)


# -- prompts -----------------------------------------------------------------------------------


def _settings(**agent):
    cfg = AgentFlowConfig.from_dict({"llm": {"provider": "ollama", "model": "m"}, "agents": {"a": agent}})
    return cfg.llm_agent("a")


def test_messages_from_role_system_prompt_and_template():
    s = _settings(role="critic", system_prompt="Be brief.", prompt="Review {title} ({tags}) {{literal}}: {input}")
    data = {"title": "Q4", "tags": ["a", "b"]}
    assert render_messages(s, data) == [
        {"role": "system", "content": "Your role: critic.\nBe brief."},
        {"role": "user", "content": 'Review Q4 (["a", "b"]) {literal}: {"title": "Q4", "tags": ["a", "b"]}'},
    ]


def test_default_user_message_is_the_input_as_json_and_no_system_without_prompt():
    assert render_messages(_settings(), {"x": 1}) == [{"role": "user", "content": '{"x": 1}'}]


def test_a_missing_template_key_names_the_agent_and_the_key():
    with pytest.raises(LLMPromptError) as info:
        render_messages(_settings(prompt="Summarize {report}"), {"x": 1})
    assert 'LLM agent "a"' in str(info.value) and "{report}" in str(info.value) and 'no key "report"' in str(info.value)


# -- concurrency defaults ---------------------------------------------------------------------


def test_max_concurrency_defaults_by_handler_kind():
    import agents

    s = _settings()
    assert AgentFlowConfig().agent("x").max_concurrency is None
    assert agent_concurrency(None, agents.returns_dict) == 1
    assert agent_concurrency(None, agents.async_double) == 100
    assert agent_concurrency(None, LLMAgent(s)) == 100
    assert agent_concurrency(7, LLMAgent(s)) == 7


def test_a_handler_wins_over_the_file(monkeypatch):
    from actorflow.llm import llm_handlers

    cfg = AgentFlowConfig.from_dict({"llm": {"provider": "ollama", "model": "m"}, "agents": {"a": {}, "b": {}}})
    assert sorted(llm_handlers(cfg)) == ["a", "b"]
    assert sorted(llm_handlers(cfg, skip={"a": object()})) == ["b"]


def test_validate_says_when_the_key_variable_is_not_set(tmp_path, capsys, monkeypatch):
    from actorflow.cli import main

    path = tmp_path / "agentflow.toml"
    path.write_text('[llm]\nprovider = "openai"\nmodel = "gpt-4o-mini"\n[agents.a]\nsystem_prompt = "Hi."\n')
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert main(["validate", str(path)]) == 0
    assert "key from $OPENAI_API_KEY (NOT SET)" in capsys.readouterr().out
    monkeypatch.setenv("OPENAI_API_KEY", "sk-zzz-secret")
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "key from $OPENAI_API_KEY" in out and "NOT SET" not in out and "sk-zzz-secret" not in out


@pytest.mark.parametrize("name, block", [("agentflow.toml", "configuration_system"), ("collaborative.toml", "collaborative"),
                                         ("sequential.toml", "sequential"), ("loop.toml", "loop"), ("mixed.toml", "mixed")])
def test_shipped_seed_files_are_the_seed_verbatim(name, block):
    from test_config import SEED  # every TOML block of the seed guide, verbatim

    header = SEED["configuration_system"].split("[orchestration]")[0]  # the seed's [agent_flow] and [llm]
    text = (SEED_LLM / name).read_text()
    start = text.index("\n[agent_flow]\n") + 1
    assert text[start:] == (SEED[block] if block == "configuration_system" else header + SEED[block])
    assert all(line.startswith("#") or not line for line in text[:start].splitlines())  # only comments added


def test_credentials_in_a_base_url_are_not_shown():
    cfg = AgentFlowConfig.from_dict({"llm": {"provider": "vllm", "model": "m", "base_url": "https://u:pw@gpu:8000/v1"},
                                     "agents": {"a": {}}})
    s = cfg.llm_agent("a")
    assert s.base_url == "https://u:pw@gpu:8000/v1"  # the client still gets it
    assert s.describe()["base_url"] == s.display_url == "https://***@gpu:8000/v1"
