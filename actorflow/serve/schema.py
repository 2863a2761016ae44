"""The HTTP API's bodies: what `/v1/*` accepts and returns (pydantic, `extra="forbid"`).

Requests are validated with these models; responses are built from `DispatchResult.to_dict()`
and `Runner.agents()` directly, and the response models document them in the OpenAPI schema.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from actorflow.events import RunStatus

__all__ = [
    "ServeArgs",
    "DispatchRequest",
    "StateBody",
    "AgentRunBody",
    "DispatchResponse",
    "ErrorDetail",
    "ErrorResponse",
    "AgentInfo",
    "AgentsResponse",
    "HealthResponse",
    "ResumeRequest",
    "DispatchStatusResponse",
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServeArgs(_Body):
    """The application builder's arguments (`args:` in a Serve config file)."""

    config: str
    """Path of the agentflow.toml, relative to the working directory."""
    env: str | None = None
    """Environment layer (`configs/environments/ENV.toml`); default: $ACTORFLOW_ENV."""
    api_key_env: str | None = Field(None, min_length=1)
    """Overrides `[serve] api_key_env`: the variable holding the API key, in the replicas' environment."""
    journal: str | None = Field(None, min_length=1)
    """Overrides `[runtime] journal`: the dispatch journal's URL (sqlite:///… or postgresql://…)."""
    flows: list[str] = Field(default_factory=list)
    """More agentflow.toml files (or directories) served beside `config` under `/v1/flows/{name}/…`."""


class DispatchRequest(_Body):
    """`POST /v1/dispatch`: the event to dispatch."""

    model_config = ConfigDict(extra="forbid", strict=True)

    target: str = Field(min_length=1)
    """The agent the event is addressed to (route mode: the agent that runs)."""
    data: dict[str, Any] = Field(default_factory=dict)
    """The event's data: the initial state's data."""
    metadata: dict[str, str] = Field(default_factory=dict)
    """The event's metadata (string values): `session_id`, `route`, …"""
    event_id: str | None = Field(None, min_length=1, max_length=512, pattern=r"^[^/]+$")
    """The event's id (default: a new UUID). With a journal, an id that already finished answers
    its recorded result and runs nothing (a retried request is not run twice)."""
    orchestration: dict[str, Any] = Field(default_factory=dict)
    """Per-event orchestration overrides (the keywords of `runner.dispatch`: mode,
    collaborative_agents, sequential_agents, loop_agent, max_iterations, timeout_seconds,
    failure_threshold, max_concurrency, join, quorum, …); an invalid one is 422."""


class StateBody(_Body):
    """A State: `data` (any JSON values) and `meta` (strings)."""

    data: dict[str, Any]
    meta: dict[str, str]


class AgentRunBody(_Body):
    """One agent attempt, as in `DispatchResult.runs`."""

    agent: str
    status: RunStatus
    duration: float
    """Seconds."""
    error: str | None
    attempt: int
    iteration: int | None
    phase: str | None
    usage: dict[str, int] | None = None
    """An LLM agent's tokens, `{"input_tokens", "output_tokens"}`; None for code agents."""
    started_at: float | None = None
    """Seconds from the dispatch's start to this attempt's start."""


class DispatchResponse(_Body):
    """A DispatchResult: the final (or partial) state and every agent run."""

    ok: bool
    mode: str
    event_id: str
    session_id: str
    duration: float
    """Whole-dispatch wall time in seconds."""
    state: StateBody
    runs: list[AgentRunBody]
    failed_agents: list[str]
    iterations: int | None
    completion_reason: str | None
    error: str | None
    trace_id: str | None = None
    """The dispatch's OpenTelemetry trace id (32 hex digits) when tracing is on."""
    interrupted: bool = False
    """True when a handler raised `Interrupt`: resume with POST /v1/dispatches/{event_id}/resume."""
    interrupt: dict[str, Any] | None = None
    """`{"agent", "reason", "payload"}` when interrupted."""


class ErrorDetail(_Body):
    """What went wrong: the error class and its message."""

    type: str
    """`AgentNotFoundError`, `DispatchTimeoutError`, `MalformedBody`, `ValidationError`, …"""
    message: str
    agent: str | None = None
    """The agent concerned, when there is one."""
    details: list[dict[str, Any]] | None = None
    """Validation errors: one entry per bad field (`loc`, `msg`, `type`)."""


class ErrorResponse(_Body):
    """Every 4xx/5xx body: the error, and the partial result when a dispatch ran."""

    error: ErrorDetail
    result: DispatchResponse | None = None


class AgentInfo(BaseModel):
    """One agent as `GET /v1/agents` lists it (more keys may follow)."""

    model_config = ConfigDict(extra="allow")

    name: str
    role: str
    description: str
    enabled: bool
    registered: bool
    """False for a configured agent that has no handler."""
    replicas: int
    pids: list[int | None]
    """Current process id of each replica (None while Ray restarts it)."""
    restarts: int | None
    """How many times Ray restarted this agent's actors, over all replicas (None: unknown)."""
    in_flight: int
    """Calls to its actors in flight right now."""
    circuit: Literal["closed", "open", "half_open"]
    """Its circuit breaker's state."""
    llm: dict[str, str] | None = None
    """An LLM agent's provider, model, base_url and output_key (never its key); None otherwise."""


class AgentsResponse(_Body):
    """`GET /v1/agents`."""

    agents: list[AgentInfo]


class HealthResponse(_Body):
    """`GET /v1/health`."""

    status: Literal["ok"]
    mode: str
    """The orchestration mode this application runs."""
    agents: int
    """Agents with running actors."""


class ResumeRequest(_Body):
    """`POST /v1/dispatches/{event_id}/resume`: the answer to an interrupt (the body is optional)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    data: dict[str, Any] | None = None
    """Merged into the interrupted agent's input data when it runs again."""


class DispatchStatusResponse(_Body):
    """`GET /v1/dispatches/{event_id}`: where a dispatch stands."""

    event_id: str
    status: Literal["running", "interrupted", "finished"]
    """running: in flight (or waiting for a runner to recover it); interrupted: waiting for
    `POST /v1/dispatches/{event_id}/resume`; finished: `result` is final."""
    result: DispatchResponse | None
    """The final result (finished), the partial one (interrupted), or null (running)."""
