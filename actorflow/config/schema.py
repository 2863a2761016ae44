"""The agentflow.toml schema: one pydantic model per section, `extra="forbid"` everywhere.

AgenticGoKit sections actorflow does not use are dropped before validation (see `compat`);
`loading` reads files and turns these models' errors into one readable `ConfigError`.
Importing this module does not import Ray.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    field_validator,
    model_validator,
)

from actorflow.config.llm import LLMSettings, llm_problems, llm_settings
from actorflow.config.messages import Problems, suggest, toml_key
from actorflow.patterns import mode_spec
from actorflow.runtime.limits import DISPATCH_TIMEOUT_SECONDS, MAILBOX_SIZE

__all__ = [
    "Mode",
    "MODES",
    "AgentFlowMeta",
    "LLMConfig",
    "AgentLLMConfig",
    "LLM_PROVIDERS",
    "RuntimeConfig",
    "RetryConfig",
    "CircuitBreakerConfig",
    "OrchestrationConfig",
    "AgentConfig",
    "ServeConfig",
    "ObservabilityConfig",
    "AgentFlowSchema",
    "OVERRIDABLE",
    "DEFAULT_RETRYABLE_ERRORS",
]

Mode = Literal["route", "collaborative", "sequential", "loop", "mixed"]
MODES: tuple[str, ...] = get_args(Mode)
_MODE_ALIASES = {"collaborate": "collaborative"}

OVERRIDABLE: tuple[str, ...] = (
    "mode", "collaborative_agents", "sequential_agents", "loop_agent", "max_iterations",
    "timeout_seconds", "failure_threshold", "max_concurrency", "retry_attempts", "join", "quorum",
    "max_hops",
)
"""Orchestration keys that `load_config(overrides=...)` and `with_overrides()` accept."""

_JOURNAL_SCHEMES = ("sqlite", "postgresql", "postgres")

DEFAULT_RETRYABLE_ERRORS: tuple[str, ...] = (
    "TimeoutError", "ConnectionError", "ConnectionResetError", "ConnectionRefusedError",
    "ConnectionAbortedError", "BrokenPipeError",
)

LLM_PROVIDERS: tuple[str, ...] = ("ollama", "openai", "openai_compatible", "vllm", "lmstudio",
                                   "llamacpp")
"""Providers of LLM agents (the last three are aliases of openai_compatible)."""

AgentName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]

_HANDLER_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class AgentFlowMeta(_Section):
    """`[agent_flow]`: what the flow is called."""

    name: str = "actorflow"
    """Name of the flow (used in diagrams, actor names and logs)."""
    version: str = "0.1.0"
    """Version of the flow definition."""


class AgentLLMConfig(_Section):
    """`[agents.NAME.llm]`: per-agent overrides of `[llm]`; a key set here wins for that agent."""

    provider: str | None = None
    """ollama | openai | openai_compatible (aliases: vllm, lmstudio, llamacpp)."""
    model: str | None = None
    """Model name as the server knows it, e.g. "gemma3:1b" or "gpt-4o-mini"."""
    temperature: float | None = Field(None, ge=0, le=2)
    """Sampling temperature, 0.0-2.0."""
    max_tokens: int | None = Field(None, ge=1)
    """Maximum tokens to generate."""
    base_url: str | None = None
    """Where the server is: for ollama its host (`http://localhost:11434`), for openai and
    openai_compatible the API base including `/v1`."""
    api_key_env: str | None = None
    """Name of the environment variable holding the API key (never the key itself)."""
    timeout_seconds: float | None = Field(None, gt=0)
    """Timeout of one model call (the client's own; the agent's timeout_seconds still applies)."""
    top_p: float | None = Field(None, ge=0, le=1)
    """Nucleus sampling mass (AgenticGoKit key)."""
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    """Frequency penalty (AgenticGoKit key)."""
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    """Presence penalty (AgenticGoKit key)."""

    @field_validator("provider")
    @classmethod
    def _check_provider(cls, value: str | None) -> str | None:
        if value is not None and value.strip().lower() not in LLM_PROVIDERS:
            hint = suggest(value.strip().lower(), LLM_PROVIDERS, quote_char='"')
            raise ValueError(
                f"must be one of {', '.join(json.dumps(p) for p in LLM_PROVIDERS)}{hint}; any "
                'OpenAI-compatible server works as provider = "openai_compatible" with its base_url')
        return value


class LLMConfig(AgentLLMConfig):
    """`[llm]`: the model settings of LLM agents (agents with no handler), also handed to handlers."""

    temperature: float = Field(0.7, ge=0, le=2)
    """Sampling temperature, 0.0-2.0."""


class RuntimeConfig(_Section):
    """`[runtime]`: where Ray runs."""

    address: str = ""
    """Ray cluster address; "" starts an embedded local Ray (unless RAY_ADDRESS is set)."""
    namespace: str = Field("actorflow", min_length=1)
    """Ray namespace of the actors."""
    num_cpus: int | None = Field(None, ge=0)
    """CPUs of the embedded local Ray; None sizes it to the machine."""
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    """Log level for the CLI and the Ray workers ("warn" is accepted for "warning")."""
    supervisors: int = Field(1, ge=1)
    """Supervisor actors; dispatches spread over them by session (a session's events stay on one)."""
    journal: str = ""
    """Dispatch journal URL, `sqlite:///path.db` or `postgresql://…`; "" keeps none (DESIGN
    "Durable dispatches (journal) and interrupts")."""
    journal_lease_seconds: float = Field(30.0, gt=0)
    """How long a runner's claim on its dispatches lasts without renewal: after a runner died,
    another takes its unfinished dispatches over once this has passed."""

    @field_validator("journal")
    @classmethod
    def _journal_url(cls, value: str) -> str:
        value = value.strip()
        scheme = value.split(":", 1)[0].split("+", 1)[0].lower() if value else ""
        if value and ("://" not in value or scheme not in _JOURNAL_SCHEMES):
            raise ValueError(
                f"journal = {value!r} is not a journal URL; use sqlite:///path.db or postgresql://user@host/db"
            )
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _normalize_level(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().lower()
            return "warning" if value == "warn" else value
        return value


class RetryConfig(_Section):
    """`[orchestration.retry]`: retries of retryable agent failures."""

    max_retries: int | None = Field(None, ge=0)
    """Retries after the first attempt; None takes `orchestration.retry_attempts`."""
    initial_delay_seconds: float = Field(1.0, ge=0)
    """Delay before the first retry."""
    max_delay_seconds: float = Field(30.0, ge=0)
    """Cap on the delay between retries."""
    backoff_factor: float = Field(2.0, ge=1)
    """Multiplier of the delay after each retry."""
    jitter: bool = True
    """Randomize each delay to avoid retry storms."""
    retryable_errors: list[str] = Field(default_factory=lambda: list(DEFAULT_RETRYABLE_ERRORS))
    """Exception class names that are retried (actor death and agent timeouts always are)."""


class CircuitBreakerConfig(_Section):
    """`[orchestration.circuit_breaker]`: one breaker per agent."""

    failure_threshold: int = Field(5, ge=1)
    """Consecutive failures that open the circuit."""
    reset_timeout_seconds: float = Field(30.0, gt=0)
    """Time an open circuit waits before going half-open."""
    half_open_successes: int = Field(3, ge=1)
    """Successful trial calls that close a half-open circuit."""
    half_open_max_calls: int = Field(1, ge=1)
    """Trial calls allowed at once while half-open."""


class OrchestrationConfig(_Section):
    """`[orchestration]`: which pattern runs and its limits."""

    mode: Mode = "route"
    """route | collaborative (alias "collaborate") | sequential | loop | mixed; case-insensitive."""
    timeout_seconds: float = Field(DISPATCH_TIMEOUT_SECONDS, gt=0)
    """Deadline of a whole dispatch."""
    max_iterations: int = Field(10, ge=1)
    """Loop bound of the loop mode."""
    retry_attempts: int = Field(3, ge=0)
    """Shorthand for `retry.max_retries` (used when that is not set)."""
    collaborative_agents: list[AgentName] = Field(default_factory=list)
    """Agents run in parallel (collaborative, mixed); empty in collaborative = all enabled."""
    sequential_agents: list[AgentName] = Field(default_factory=list)
    """Agents run in order (sequential, mixed)."""
    loop_agent: AgentName | None = None
    """The agent the loop mode repeats."""
    max_concurrency: int = Field(5, ge=1)
    """Concurrent agent calls inside one dispatch."""
    failure_threshold: float = Field(0.5, ge=0, le=1)
    """Fraction of failed collaborative agents tolerated (0 = none)."""
    retry: RetryConfig = Field(default_factory=RetryConfig)
    """Retry policy."""
    circuit_breaker: CircuitBreakerConfig = Field(default_factory=CircuitBreakerConfig)
    """Per-agent circuit breaker."""
    merge: dict[str, str] = Field(default_factory=dict)
    """`[orchestration.merge]`: reducer per data key, and `default` (see `patterns.reducers`)."""
    join: Literal["all", "first", "quorum"] = "all"
    """When the collaborative phase ends: every agent, the first success, or `quorum` successes."""
    quorum: int | None = Field(None, ge=1)
    """Successes that end the collaborative phase with `join = "quorum"`."""
    max_hops: int = Field(10, ge=1)
    """Route chaining: most agent runs one route dispatch makes."""

    @field_validator("merge")
    @classmethod
    def _check_merge(cls, value: dict[str, str]) -> dict[str, str]:
        from actorflow.patterns.reducers import check_reducers

        check_reducers(value)
        return value

    @model_validator(mode="after")
    def _check_join(self) -> OrchestrationConfig:
        if self.join == "quorum" and self.quorum is None:
            raise ValueError('join = "quorum" needs quorum = N (the successes that end the phase)')
        if self.join != "quorum" and self.quorum is not None:
            raise ValueError(f'quorum = {self.quorum} has no effect unless join = "quorum"')
        return self

    @field_validator("mode", mode="before")
    @classmethod
    def _normalize_mode(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().lower()
            return _MODE_ALIASES.get(value, value)
        return value

    @field_validator("loop_agent", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @property
    def max_retries(self) -> int:
        """Effective retry count: `retry.max_retries` if set, else `retry_attempts`."""
        return self.retry_attempts if self.retry.max_retries is None else self.retry.max_retries

    def named_agents(self) -> list[str]:
        """The agents the current mode names, in order, each once (route names none)."""
        return mode_spec(self.mode).agents(self)


class AgentConfig(_Section):
    """`[agents.NAME]`: one agent and the Ray actor(s) that run it."""

    role: str = ""
    """Short role, shown in diagrams and the HTTP agent list."""
    description: str = ""
    """What the agent does."""
    system_prompt: str = ""
    """System message of an LLM agent (also handed to handlers)."""
    prompt: str | None = None
    """LLM agent: the user message, `{input}` = the input data as JSON, `{KEY}` = data[KEY];
    None sends the input data as JSON."""
    output_key: str | None = Field(None, min_length=1)
    """LLM agent: the data key that receives the reply text; None = "<name>_response"."""
    llm: AgentLLMConfig | None = None
    """`[agents.NAME.llm]`: overrides of `[llm]` for this agent."""
    enabled: bool = True
    """A disabled agent gets no actor and may not be named by the mode's lists."""
    capabilities: list[str] = Field(default_factory=list)
    """Free-form capability tags."""
    handler: str | None = None
    """Handler to import, "package.module:attribute" (a function or an Agent subclass)."""
    timeout_seconds: float | None = Field(None, gt=0)
    """Timeout of one run of this agent; None = bounded by the dispatch deadline only."""
    max_concurrency: int | None = Field(None, ge=1)
    """Messages one actor handles at once (1 = classic one-at-a-time mailbox); None = 1 for a
    synchronous handler, 100 for an async handler or an LLM agent."""
    mailbox_size: int = Field(MAILBOX_SIZE, ge=1)
    """Pending messages per actor (per supervisor) before MailboxFullError (Ray max_pending_calls);
    the default equals the supervisor's in-flight cap, so it never fills first."""
    replicas: int = Field(1, ge=1)
    """Actors in this agent's pool."""
    num_cpus: float | None = Field(None, ge=0)
    """CPUs reserved per actor (Ray's default when None)."""
    num_gpus: float | None = Field(None, ge=0)
    """GPUs reserved per actor."""
    resources: dict[str, Annotated[float, Field(ge=0)]] = Field(default_factory=dict)
    """Custom Ray resources reserved per actor."""
    max_restarts: int = Field(-1, ge=-1)
    """Ray restarts of a dead actor (-1 = unlimited, 0 = none)."""
    scheduling: Literal["default", "spread", "pack"] = "default"
    """Placement of the replicas over the cluster's nodes: "spread" over as many nodes as can
    host them, "pack" on the runner's node while it has room, "default" wherever Ray puts them."""
    flow: str | None = Field(None, min_length=1)
    """A nested flow: path of an agentflow.toml (relative to this file) whose whole orchestration
    this agent runs on its input state."""

    @model_validator(mode="after")
    def _flow_or_handler(self) -> AgentConfig:
        if self.flow and self.handler:
            raise ValueError("set either handler or flow, not both")
        return self

    @field_validator("handler")
    @classmethod
    def _check_handler(cls, value: str | None) -> str | None:
        if value is not None and not _HANDLER_RE.match(value):
            raise ValueError('must look like "package.module:attribute"')
        return value


class ServeConfig(_Section):
    """`[serve]`: the Ray Serve HTTP application."""

    host: str = "127.0.0.1"
    """Interface the HTTP proxy binds."""
    port: int = Field(8000, ge=1, le=65535)
    """HTTP port."""
    route_prefix: str = "/"
    """URL prefix of the application; starts with "/"."""
    num_replicas: int = Field(1, ge=1)
    """Serve replicas of the ingress deployment; each holds its own Runner and agent actors."""
    max_ongoing_requests: int = Field(64, ge=1)
    """Concurrent requests per replica (Serve's own default of 5 is too low here)."""
    max_body_bytes: int = Field(1_048_576, ge=1)
    """Largest accepted request body; a larger one is refused with 413."""
    api_key_env: str | None = Field(None, min_length=1)
    """Name of the environment variable holding the API key: every endpoint but `/v1/health`
    then needs `Authorization: Bearer <key>` (401 otherwise). None: no authentication."""
    public_metrics: bool = False
    """With `api_key_env`: serve `/metrics` without the key too (a scraper on a private network)."""
    cors_origins: list[str] = Field(default_factory=list)
    """Browser origins allowed to call the API (CORS), e.g. `["https://app.example.com"]`;
    empty (the default): no cross-origin browser access."""

    @field_validator("route_prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError('must start with "/"')
        return value


class ObservabilityConfig(_Section):
    """`[observability]`: OpenTelemetry tracing (README "Observability")."""

    tracing: bool = False
    """Trace every dispatch (needs the `otel` extra). Also on when the standard OTEL exporter
    variables are set (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
    `OTEL_TRACES_EXPORTER`); `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` turn it off."""


class AgentFlowSchema(_Section):
    """The sections of a whole agentflow.toml (`AgentFlowConfig` adds the validating constructors)."""

    agent_flow: AgentFlowMeta = Field(default_factory=AgentFlowMeta)
    """`[agent_flow]`."""
    llm: LLMConfig = Field(default_factory=LLMConfig)
    """`[llm]`."""
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    """`[runtime]`."""
    orchestration: OrchestrationConfig = Field(default_factory=OrchestrationConfig)
    """`[orchestration]`."""
    agents: dict[str, AgentConfig] = Field(default_factory=dict)
    """`[agents.NAME]` sections, in file order."""
    serve: ServeConfig = Field(default_factory=ServeConfig)
    """`[serve]`."""
    observability: ObservabilityConfig = Field(default_factory=ObservabilityConfig)
    """`[observability]`."""

    _source: str | None = PrivateAttr(None)
    _flows: dict[str, Any] = PrivateAttr(default_factory=dict)
    """Nested flows by agent name (`[agents.NAME] flow`), loaded with the file."""
    _warnings: list[str] = PrivateAttr(default_factory=list)
    _env: dict[str, str] = PrivateAttr(default_factory=dict)
    """Environment variables LLM defaults depend on, captured where the file was loaded."""

    @property
    def source(self) -> str | None:
        """Path of the base file this config was loaded from (None when built in code)."""
        return self._source

    @property
    def flows(self) -> dict[str, Any]:
        """The nested flows of `[agents.NAME] flow = "..."`: agent name → its `AgentFlowConfig`."""
        return dict(self._flows)

    @property
    def warnings(self) -> list[str]:
        """Warnings about ignored AgenticGoKit sections and keys, one per entry."""
        return list(self._warnings)

    @model_validator(mode="after")
    def _check_mode(self) -> AgentFlowSchema:
        orch, spec = self.orchestration, mode_spec(self.orchestration.mode)
        problems = [(("orchestration", key), text) for key, text in spec.missing(orch)]
        for key in spec.agent_keys:
            value = getattr(orch, key)
            for name in dict.fromkeys([value] if isinstance(value, str) else value or []):
                if name in self.agents and not self.agents[name].enabled:
                    problems.append((("orchestration", key), f'names agent "{name}", whose '
                                     f"[agents.{toml_key(name)}] section has enabled = false"))
        agents = orch.collaborative_agents
        if orch.join == "quorum" and agents and orch.quorum and orch.quorum > len(set(agents)):
            problems.append((("orchestration", "quorum"), f"is {orch.quorum}, more than the "
                             f"{len(set(agents))} collaborative agents can give"))
        problems += llm_problems(self)
        if problems:
            raise Problems(problems)
        return self

    def llm_agent(self, name: str) -> LLMSettings | None:
        """The resolved model settings when the file makes `name` an LLM agent (no handler and a
        provider configured), else None. A handler registered in code still takes precedence."""
        if name in self.agents and self.agents[name].flow:
            return None  # a nested flow is not an LLM agent
        return llm_settings(self, name, self._env)

    def llm_agents(self) -> dict[str, LLMSettings]:
        """Every agent the file makes an LLM agent, with its resolved settings."""
        found = {name: self.llm_agent(name) for name in self.agents}
        return {name: settings for name, settings in found.items() if settings is not None}

    def agent(self, name: str) -> AgentConfig:
        """The `[agents.NAME]` section, or the defaults when the file has none."""
        return self.agents[name] if name in self.agents else AgentConfig()

    def enabled_agents(self) -> list[str]:
        """Names of the `[agents.*]` sections with `enabled = true`, in file order."""
        return [name for name, agent in self.agents.items() if agent.enabled]
