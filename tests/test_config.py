"""agentflow.toml loading: the seed's files, error messages, modes, layering, overrides."""

from __future__ import annotations

import logging
import pickle
import subprocess
import sys
import textwrap

import pytest
from pydantic import ValidationError

from actorflow.config import (
    AgentConfig,
    AgentFlowConfig,
    OrchestrationConfig,
    load_config,
)
from actorflow.exceptions import ConfigError

pytestmark = pytest.mark.timeout(30)

# Every TOML block of seed/orchestration-patterns.txt, verbatim.
SEED = {
    "configuration_system": """\
[agent_flow]
name = "multi-agent-system"
version = "1.0.0"
[llm]
provider = "ollama"
model = "gemma3:1b"
temperature = 0.7
[orchestration]
mode = "collaborative" # route, collaborative, sequential, loop, mixed
timeout_seconds = 30 # Global timeout for orchestration
max_iterations = 5 # For loop mode
retry_attempts = 3 # Retry failed operations
# Mode-specific configurations
collaborative_agents = ["analyzer", "validator", "processor"]
sequential_agents = ["collector", "transformer", "publisher"]
loop_agent = "quality_checker"
[agents.analyzer]
role = "data_analyzer"
system_prompt = "You analyze data for patterns and insights."
enabled = true
capabilities = ["analysis", "pattern_recognition"]
[agents.validator]
role = "data_validator"
system_prompt = "You validate data quality and consistency."
enabled = true
capabilities = ["validation", "quality_check"]
[agents.processor]
role = "data_processor"
system_prompt = "You process and transform data."
enabled = true
capabilities = ["processing", "transformation"]
""",
    "route": """\
[orchestration]
mode = "route"
timeout_seconds = 30
""",
    "collaborative": """\
[orchestration]
mode = "collaborative"
timeout_seconds = 45
collaborative_agents = ["analyzer", "validator", "processor"]
[agents.analyzer]
role = "data_analyzer"
system_prompt = "You analyze data for patterns and insights."
enabled = true
[agents.validator]
role = "data_validator"
system_prompt = "You validate data quality and accuracy."
enabled = true
[agents.processor]
role = "data_processor"
system_prompt = "You process and transform data."
enabled = true
""",
    "sequential": """\
[orchestration]
mode = "sequential"
timeout_seconds = 60
sequential_agents = ["collector", "processor", "validator", "publisher"]
[agents.collector]
role = "data_collector"
system_prompt = "You collect and prepare raw data."
enabled = true
[agents.processor]
role = "data_processor"
system_prompt = "You process and transform collected data."
enabled = true
[agents.validator]
role = "data_validator"
system_prompt = "You validate processed data quality."
enabled = true
[agents.publisher]
role = "data_publisher"
system_prompt = "You format and publish validated data."
enabled = true
""",
    "loop": """\
[orchestration]
mode = "loop"
timeout_seconds = 120
max_iterations = 10
loop_agent = "quality_improver"
[agents.quality_improver]
role = "quality_improver"
system_prompt = "You iteratively improve content quality until it meets standards."
enabled = true
""",
    "mixed": """\
[orchestration]
mode = "mixed"
timeout_seconds = 90
collaborative_agents = ["analyzer", "validator", "enricher"]
sequential_agents = ["synthesizer", "formatter", "publisher"]

# Collaborative phase agents
[agents.analyzer]
role = "data_analyzer"
system_prompt = "You analyze data for insights and patterns."
enabled = true
[agents.validator]
role = "data_validator"
system_prompt = "You validate data accuracy and completeness."
enabled = true
[agents.enricher]
role = "data_enricher"
system_prompt = "You enrich data with additional context."
enabled = true

# Sequential phase agents
[agents.synthesizer]
role = "data_synthesizer"
system_prompt = "You synthesize analysis results into coherent insights."
enabled = true
[agents.formatter]
role = "report_formatter"
system_prompt = "You format synthesized data into professional reports."
enabled = true
[agents.publisher]
role = "report_publisher"
system_prompt = "You publish formatted reports to appropriate channels."
enabled = true
""",
    "env_development": """\
[orchestration]
mode = "route"
timeout_seconds = 10
""",
    "env_testing": """\
[orchestration]
mode = "collaborative"
timeout_seconds = 30
collaborative_agents = ["analyzer", "validator"]
""",
    "env_production": """\
[orchestration]
mode = "mixed"
timeout_seconds = 60
collaborative_agents = ["analyzer", "validator", "enricher"]
sequential_agents = ["synthesizer", "formatter", "publisher"]
""",
}

SEED_EXPECTED = {  # name: (mode, timeout, agents the mode names)
    "configuration_system": ("collaborative", 30, ["analyzer", "validator", "processor"]),
    "route": ("route", 30, []),
    "collaborative": ("collaborative", 45, ["analyzer", "validator", "processor"]),
    "sequential": ("sequential", 60, ["collector", "processor", "validator", "publisher"]),
    "loop": ("loop", 120, ["quality_improver"]),
    "mixed": ("mixed", 90, ["analyzer", "validator", "enricher", "synthesizer", "formatter",
                            "publisher"]),
    "env_development": ("route", 10, []),
    "env_testing": ("collaborative", 30, ["analyzer", "validator"]),
    "env_production": ("mixed", 60, ["analyzer", "validator", "enricher", "synthesizer",
                                     "formatter", "publisher"]),
}


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv("ACTORFLOW_ENV", raising=False)


def write(tmp_path, text, name="agentflow.toml"):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def load_error(tmp_path, text, **kwargs) -> ConfigError:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, **kwargs)
    return info.value


# --- the seed ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(SEED))
def test_every_seed_block_loads_unchanged(tmp_path, name):
    cfg = load_config(write(tmp_path, SEED[name]))
    mode, timeout, named = SEED_EXPECTED[name]
    assert cfg.orchestration.mode == mode
    assert cfg.orchestration.timeout_seconds == timeout
    assert cfg.orchestration.named_agents() == named
    assert cfg.warnings == []
    assert cfg.source == str(tmp_path / "agentflow.toml")


def test_seed_values_are_mirrored(tmp_path):
    cfg = load_config(write(tmp_path, SEED["configuration_system"]))
    assert (cfg.agent_flow.name, cfg.agent_flow.version) == ("multi-agent-system", "1.0.0")
    assert (cfg.llm.provider, cfg.llm.model, cfg.llm.temperature) == ("ollama", "gemma3:1b", 0.7)
    assert cfg.orchestration.max_iterations == 5
    assert cfg.orchestration.max_retries == 3
    assert cfg.orchestration.sequential_agents == ["collector", "transformer", "publisher"]
    assert cfg.orchestration.loop_agent == "quality_checker"
    assert list(cfg.agents) == ["analyzer", "validator", "processor"]
    assert cfg.agents["validator"].capabilities == ["validation", "quality_check"]
    assert cfg.agent("analyzer").role == "data_analyzer"


def test_defaults():
    cfg = AgentFlowConfig()
    assert cfg.orchestration.mode == "route"
    assert (cfg.orchestration.timeout_seconds, cfg.orchestration.max_iterations) == (30, 10)
    assert (cfg.orchestration.max_concurrency, cfg.orchestration.failure_threshold) == (5, 0.5)
    assert cfg.orchestration.max_retries == 3
    assert cfg.orchestration.circuit_breaker.failure_threshold == 5
    assert "TimeoutError" in cfg.orchestration.retry.retryable_errors
    assert (cfg.runtime.address, cfg.runtime.namespace) == ("", "actorflow")
    assert (cfg.serve.port, cfg.serve.max_ongoing_requests) == (8000, 64)
    assert cfg.agents == {} and cfg.source is None and cfg.warnings == []
    assert cfg.agent("anyone") == AgentConfig()
    assert cfg.agent("anyone").mailbox_size == 10_000


def test_importing_config_does_not_import_ray():
    code = "import sys, actorflow.config; assert 'ray' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=25)


# --- error messages ---------------------------------------------------------------------------

def test_misspelled_key_names_file_key_path_and_closest_key(tmp_path):
    err = load_error(tmp_path, """\
        [orchestration]
        mode = "route"
        timeout_secnds = 5
        """)
    message = str(err)
    assert str(tmp_path / "agentflow.toml") in message
    assert "orchestration.timeout_secnds" in message
    assert "did you mean orchestration.timeout_seconds?" in message
    assert err.path == str(tmp_path / "agentflow.toml")
    assert err.key == "orchestration.timeout_secnds"


def test_misspelled_section_and_agent_key(tmp_path):
    err = load_error(tmp_path, """\
        [orchestraton]
        mode = "route"
        [agents.writer]
        rol = "author"
        [orchestration.circuit_breaker]
        reset_timeout = 3
        """)
    message = str(err)
    assert "unknown key orchestraton (did you mean orchestration?)" in message
    assert "unknown key agents.writer.rol (did you mean agents.writer.role?)" in message
    assert "orchestration.circuit_breaker.reset_timeout" in message
    assert "orchestration.circuit_breaker.reset_timeout_seconds" in message
    assert "3 problems" in message


def test_bad_values_are_quoted_with_what_is_allowed(tmp_path):
    err = load_error(tmp_path, """\
        [orchestration]
        mode = "sequental"
        failure_threshold = 1.5
        timeout_seconds = 0
        max_iterations = "many"
        [serve]
        port = 70000
        [agents.a]
        handler = "not a handler"
        enabled = "yes"
        """)
    message = str(err)
    assert 'orchestration.mode = "sequental" is not allowed: must be one of "route"' in message
    assert '(did you mean "sequential"?)' in message
    assert ("orchestration.failure_threshold = 1.5 is not allowed: must be between 0 and 1"
            in message)
    assert "orchestration.timeout_seconds = 0 is not allowed: must be greater than 0" in message
    assert 'orchestration.max_iterations = "many" is not allowed: must be a whole number' in message
    assert "serve.port = 70000 is not allowed: must be between 1 and 65535" in message
    assert 'agents.a.handler = "not a handler" is not allowed: must look like' in message
    assert 'agents.a.enabled = "yes" is not allowed: must be true or false' in message


def test_message_is_one_paragraph_not_a_pydantic_dump(tmp_path):
    message = str(load_error(tmp_path, "[orchestration]\nmax_concurrency = 0\nfoo = 1\n"))
    assert "\n" not in message
    assert "pydantic" not in message and "validation error" not in message.lower()
    path = tmp_path / "agentflow.toml"
    assert message.startswith(f"Invalid configuration in {path} (2 problems): ")


@pytest.mark.parametrize("key, value, allowed", [
    ("orchestration.retry.backoff_factor", "0.5", "must be at least 1"),
    ("orchestration.retry.initial_delay_seconds", "-1", "must be at least 0"),
    ("orchestration.circuit_breaker.half_open_successes", "0", "must be at least 1"),
    ("agents.a.replicas", "0", "must be at least 1"),
    ("agents.a.mailbox_size", "0", "must be at least 1"),
    ("agents.a.max_restarts", "-2", "must be at least -1"),
    ("agents.a.timeout_seconds", "0", "must be greater than 0"),
    ("llm.temperature", "2.5", "must be between 0 and 2"),
])
def test_range_checks(tmp_path, key, value, allowed):
    table, _, name = key.rpartition(".")
    message = str(load_error(tmp_path, f"[{table}]\n{name} = {value}\n"))
    assert f"{key} = {value} is not allowed: {allowed}" in message


def test_toml_syntax_error_names_file_and_line(tmp_path):
    err = load_error(tmp_path, '[orchestration]\nmode = "route"\ntimeout_seconds = = 3\n')
    assert str(tmp_path / "agentflow.toml") in str(err)
    assert "line 3" in str(err)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")


# --- modes ------------------------------------------------------------------------------------

@pytest.mark.parametrize("orchestration, key", [
    ('mode = "sequential"', "orchestration.sequential_agents"),
    ('mode = "loop"', "orchestration.loop_agent"),
    ('mode = "loop"\nloop_agent = ""', "orchestration.loop_agent"),
    ('mode = "mixed"\ncollaborative_agents = ["a"]', "orchestration.sequential_agents"),
    ('mode = "mixed"\nsequential_agents = ["a"]', "orchestration.collaborative_agents"),
])
def test_mode_requirements(tmp_path, orchestration, key):
    err = load_error(tmp_path, f"[orchestration]\n{orchestration}\n")
    assert f"{key}: " in str(err)
    assert "needs" in str(err)
    assert err.key == key


def test_collaborative_with_empty_list_and_no_sections_is_valid(tmp_path):
    # the agents may all be registered in code: the runtime uses every registered agent
    cfg = load_config(write(tmp_path, '[orchestration]\nmode = "collaborative"\n'))
    assert cfg.orchestration.collaborative_agents == [] and cfg.agents == {}


def test_collaborative_with_empty_list_means_all_enabled_agents(tmp_path):
    cfg = load_config(write(tmp_path, """\
        [orchestration]
        mode = "collaborative"
        [agents.a]
        [agents.b]
        enabled = false
        [agents.c]
        """))
    assert cfg.orchestration.named_agents() == []
    assert cfg.enabled_agents() == ["a", "c"]


def test_lists_may_name_agents_without_a_section(tmp_path):
    cfg = load_config(write(tmp_path, '[orchestration]\nmode = "sequential"\n'
                                      'sequential_agents = ["x", "y", "x"]\n'))
    assert cfg.orchestration.sequential_agents == ["x", "y", "x"]
    assert cfg.orchestration.named_agents() == ["x", "y"]


def test_naming_a_disabled_agent_is_an_error(tmp_path):
    err = load_error(tmp_path, """\
        [orchestration]
        mode = "mixed"
        collaborative_agents = ["a", "b"]
        sequential_agents = ["c"]
        [agents.b]
        enabled = false
        """)
    assert 'orchestration.collaborative_agents: names agent "b"' in str(err)
    assert "enabled = false" in str(err)


def test_disabled_agent_not_named_by_the_mode_is_fine(tmp_path):
    cfg = load_config(write(tmp_path, """\
        [orchestration]
        mode = "sequential"
        sequential_agents = ["a"]
        loop_agent = "b"
        [agents.b]
        enabled = false
        """))
    assert cfg.orchestration.named_agents() == ["a"]


@pytest.mark.parametrize("written, mode", [("collaborate", "collaborative"),
                                           ("Collaborative", "collaborative"),
                                           ("SEQUENTIAL", "sequential"), (" loop ", "loop")])
def test_mode_alias_and_case(written, mode):
    orch = OrchestrationConfig(mode=written, collaborative_agents=["a"], sequential_agents=["a"],
                               loop_agent="a")
    assert orch.mode == mode


def test_named_agents_and_max_retries():
    orch = OrchestrationConfig(mode="mixed", collaborative_agents=["a", "b"],
                               sequential_agents=["b", "c"], retry={"max_retries": 0})
    assert orch.named_agents() == ["a", "b", "c"]
    assert orch.max_retries == 0
    assert OrchestrationConfig(mode="loop", loop_agent="q").named_agents() == ["q"]
    assert OrchestrationConfig(retry_attempts=7).max_retries == 7


def test_models_are_immutable():
    cfg = AgentFlowConfig()
    with pytest.raises(ValidationError):
        cfg.orchestration.mode = "loop"


# --- environments -----------------------------------------------------------------------------

BASE = """\
[agent_flow]
name = "layered"
[orchestration]
mode = "collaborative"
timeout_seconds = 10
collaborative_agents = ["a", "b"]
[agents.a]
role = "first"
capabilities = ["x", "y"]
[agents.b]
role = "second"
"""
STAGING = """\
[orchestration]
timeout_seconds = 99
collaborative_agents = ["b"]
[agents.a]
capabilities = ["z"]
replicas = 2
"""


def _layered(tmp_path):
    base = write(tmp_path, BASE)
    write(tmp_path, STAGING, "environments/staging.toml")
    return base


def _assert_staging(cfg):
    assert cfg.orchestration.timeout_seconds == 99            # scalar replaced
    assert cfg.orchestration.collaborative_agents == ["b"]    # list replaced
    assert cfg.orchestration.mode == "collaborative"          # table merged
    assert cfg.agents["a"].role == "first"
    assert (cfg.agents["a"].capabilities, cfg.agents["a"].replicas) == (["z"], 2)
    assert cfg.agents["b"].role == "second"
    assert cfg.agent_flow.name == "layered"


def test_env_argument_layers_the_environment_file(tmp_path):
    base = _layered(tmp_path)
    cfg = load_config(base, env="staging")
    _assert_staging(cfg)
    assert cfg.source == str(base)
    assert load_config(base).orchestration.timeout_seconds == 10


def test_actorflow_env_variable_selects_the_layer(tmp_path, monkeypatch):
    base = _layered(tmp_path)
    monkeypatch.setenv("ACTORFLOW_ENV", "staging")
    _assert_staging(load_config(base))


def test_missing_layer_names_path_and_available_environments(tmp_path):
    base = _layered(tmp_path)
    write(tmp_path, "", "environments/production.toml")
    with pytest.raises(ConfigError) as info:
        load_config(base, env="qa")
    message = str(info.value)
    assert str(tmp_path / "environments" / "qa.toml") in message
    assert "available environments: production, staging" in message


def test_errors_in_the_layer_name_the_layer_file(tmp_path):
    base = write(tmp_path, BASE)
    layer = write(tmp_path, "[orchestration]\nmax_iteratons = 3\n", "environments/staging.toml")
    with pytest.raises(ConfigError) as info:
        load_config(base, env="staging")
    assert f"Invalid configuration in {layer}:" in str(info.value)
    assert "did you mean orchestration.max_iterations?" in str(info.value)
    assert info.value.path == str(layer)
    write(tmp_path, "[orchestration\n", "environments/staging.toml")
    with pytest.raises(ConfigError, match=r"Invalid TOML in .*staging\.toml at line 1"):
        load_config(base, env="staging")


# --- overrides --------------------------------------------------------------------------------

def test_overrides_win_over_file_and_layer(tmp_path):
    base = _layered(tmp_path)
    cfg = load_config(base, env="staging", overrides={
        "mode": "sequential", "sequential_agents": "b, a", "timeout_seconds": 5,
        "max_iterations": None, "failure_threshold": 0.0, "max_concurrency": 2,
        "retry_attempts": 1})
    orch = cfg.orchestration
    assert orch.mode == "sequential" and orch.sequential_agents == ["b", "a"]
    assert (orch.timeout_seconds, orch.max_iterations, orch.failure_threshold) == (5, 10, 0.0)
    assert (orch.max_concurrency, orch.max_retries) == (2, 1)


def test_with_overrides_returns_a_new_validated_copy(tmp_path):
    cfg = load_config(write(tmp_path, SEED["sequential"]))
    looped = cfg.with_overrides(mode="loop", loop_agent="processor", max_iterations=3,
                                collaborative_agents=None)
    assert (looped.orchestration.mode, looped.orchestration.named_agents()) == ("loop",
                                                                                 ["processor"])
    assert cfg.orchestration.mode == "sequential"
    assert looped.source == cfg.source and looped.agents == cfg.agents
    collab = cfg.with_overrides(mode="collaborate", collaborative_agents=["collector", "validator"])
    assert collab.orchestration.named_agents() == ["collector", "validator"]


def test_overrides_are_validated_again(tmp_path):
    cfg = load_config(write(tmp_path, SEED["route"]))
    with pytest.raises(ConfigError, match="orchestration.sequential_agents: mode \"sequential\""):
        cfg.with_overrides(mode="sequential")
    with pytest.raises(ConfigError, match="override max_iterations = 0 is not allowed"):
        cfg.with_overrides(max_iterations=0)
    with pytest.raises(ConfigError, match="with overrides"):
        load_config(cfg.source, overrides={"mode": "loop"})


def test_unknown_override_names_the_closest_allowed_one():
    with pytest.raises(ConfigError, match=r'"max_iteration" \(did you mean max_iterations\?\)'):
        AgentFlowConfig().with_overrides(max_iteration=3)
    with pytest.raises(ConfigError, match="allowed: mode, collaborative_agents"):
        AgentFlowConfig().with_overrides(handler="x:y")


# --- AgenticGoKit compatibility ---------------------------------------------------------------

AGK = """\
[agent_flow]
name = "agk"
provider = "openai"
[logging]
level = "info"
format = "json"
[runtime]
max_concurrent_agents = 5
[llm]
provider = "openai"
model = "gpt-4"
max_tokens = 800
top_p = 0.9
[providers.openai]
api_key = "test-key"
[mcp]
enabled = false
[agents.researcher]
role = "research_specialist"
[agents.researcher.llm]
temperature = 0.3
"""


def test_agentic_gokit_sections_load_with_warnings(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="actorflow.config"):
        cfg = load_config(write(tmp_path, AGK))
    assert (cfg.llm.max_tokens, cfg.llm.top_p) == (800, 0.9)
    assert cfg.agents["researcher"].role == "research_specialist"
    joined = "\n".join(cfg.warnings)
    for ignored in ("[logging]", "[providers]", "[mcp]", "agent_flow.provider",
                    "runtime.max_concurrent_agents"):
        assert ignored in joined
    assert "agents.researcher.llm" not in joined  # [agents.NAME.llm] configures an LLM agent
    assert cfg.agents["researcher"].llm.temperature == 0.3
    assert cfg.llm_agent("researcher").temperature == 0.3
    assert all(str(tmp_path / "agentflow.toml") in w for w in cfg.warnings)
    assert [r.getMessage() for r in caplog.records] == cfg.warnings


def test_error_routing_maps_onto_retry_and_circuit_breaker(tmp_path):
    cfg = load_config(write(tmp_path, """\
        [error_routing]
        enabled = true
        max_retries = 9
        retry_delay_ms = 100
        error_handler_name = "default-error-handler"
        [error_routing.circuit_breaker]
        failure_threshold = 4
        success_threshold = 2
        reset_timeout_ms = 60000
        half_open_max_calls = 3
        [error_routing.retry]
        max_retries = 2
        base_delay_ms = 250
        max_delay_ms = 10000
        backoff_factor = 3.0
        enable_jitter = false
        """))
    retry, breaker = cfg.orchestration.retry, cfg.orchestration.circuit_breaker
    assert (retry.max_retries, retry.initial_delay_seconds) == (2, 0.25)
    assert retry.max_delay_seconds == 10
    assert (retry.backoff_factor, retry.jitter) == (3.0, False)
    assert cfg.orchestration.max_retries == 2
    assert (breaker.failure_threshold, breaker.half_open_successes) == (4, 2)
    assert (breaker.reset_timeout_seconds, breaker.half_open_max_calls) == (60, 3)
    assert any("[error_routing]" in w for w in cfg.warnings)


def test_error_routing_top_level_keys_and_durations(tmp_path):
    cfg = load_config(write(tmp_path, """\
        [error_routing]
        max_retries = 4
        retry_delay = "1m30s"
        [error_routing.circuit_breaker]
        reset_timeout = "500ms"
        """))
    retry = cfg.orchestration.retry
    assert (retry.max_retries, retry.initial_delay_seconds) == (4, 90)
    assert cfg.orchestration.circuit_breaker.reset_timeout_seconds == 0.5


def test_explicit_orchestration_values_win_over_error_routing(tmp_path):
    cfg = load_config(write(tmp_path, """\
        [orchestration]
        retry_attempts = 1
        [orchestration.retry]
        initial_delay_seconds = 0.1
        [error_routing]
        max_retries = 5
        [error_routing.retry]
        base_delay_ms = 2000
        max_delay_ms = 4000
        """))
    retry = cfg.orchestration.retry
    assert (cfg.orchestration.max_retries, retry.max_retries) == (1, None)
    assert (retry.initial_delay_seconds, retry.max_delay_seconds) == (0.1, 4)
    disabled = load_config(write(tmp_path, "[error_routing]\nenabled = false\nmax_retries = 7\n"))
    assert disabled.orchestration.max_retries == 3


def test_bad_error_routing_value_names_its_key(tmp_path):
    message = str(load_error(tmp_path, """\
        [error_routing.retry]
        base_delay_ms = "soon"
        backoff_factor = 0.5
        """))
    assert 'error_routing.retry.base_delay_ms = "soon" is not allowed' in message
    assert ("error_routing.retry.backoff_factor (mapped to orchestration.retry.backoff_factor)"
            " = 0.5 is not allowed: must be at least 1") in message


# --- copies and pickling ----------------------------------------------------------------------

def test_pickle_round_trip_keeps_source_and_warnings(tmp_path):
    cfg = load_config(write(tmp_path, SEED["mixed"] + "[logging]\nlevel = 'debug'\n"))
    clone = pickle.loads(pickle.dumps(cfg))
    assert clone == cfg
    assert (clone.source, clone.warnings) == (cfg.source, cfg.warnings)
    assert len(clone.warnings) == 1


def test_with_agent_options(tmp_path):
    cfg = load_config(write(tmp_path, SEED["collaborative"]))
    tuned = cfg.with_agent_options("analyzer", replicas=3, timeout_seconds=2,
                                   resources={"accel": 0.5})
    assert (tuned.agents["analyzer"].replicas, tuned.agents["analyzer"].timeout_seconds) == (3, 2)
    assert tuned.agents["analyzer"].role == "data_analyzer"
    assert cfg.agents["analyzer"].replicas == 1
    added = cfg.with_agent_options("helper", handler="pkg.mod:Helper", max_concurrency=4)
    assert added.agents["helper"].handler == "pkg.mod:Helper"
    assert added.source == cfg.source


def test_with_agent_options_rejects_bad_options(tmp_path):
    cfg = load_config(write(tmp_path, SEED["collaborative"]))
    suggestion = r'"replica" for agent "analyzer" \(did you mean replicas\?\)'
    with pytest.raises(ConfigError, match=suggestion):
        cfg.with_agent_options("analyzer", replica=2)
    with pytest.raises(ConfigError, match='option "mailbox_size" of agent "analyzer" = 0'):
        cfg.with_agent_options("analyzer", mailbox_size=0)
    with pytest.raises(ConfigError, match='names agent "validator".*enabled = false'):
        cfg.with_agent_options("validator", enabled=False)


def test_from_dict_validates_like_a_file():
    cfg = AgentFlowConfig.from_dict({"orchestration": {"mode": "loop", "loop_agent": "q"}},
                                    overrides={"max_iterations": 2})
    assert (cfg.orchestration.max_iterations, cfg.source) == (2, None)
    with pytest.raises(ConfigError, match="Invalid configuration in <config>: unknown key"):
        AgentFlowConfig.from_dict({"serve": {"prot": 1}})
