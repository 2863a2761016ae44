"""LLM agents in agentflow.toml: which agents they are, and their resolved model settings.

An enabled `[agents.NAME]` section with no `handler` is an LLM agent when a provider is
configured for it (`[llm]`, or `[agents.NAME.llm]`, whose keys win for that agent). A handler
registered in code still wins over the file (the runner skips those). Defaults are resolved
here, from the environment of the process that loaded the file (`$OLLAMA_HOST`), so agent
actors need no environment of their own. Importing this module does not import Ray.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from actorflow.config.messages import Loc, toml_key

if TYPE_CHECKING:
    from actorflow.config.schema import AgentFlowSchema

__all__ = ["LLMSettings", "llm_settings", "llm_problems", "captured_env", "PROVIDER_KINDS"]

OLLAMA_DEFAULT_HOST = "http://localhost:11434"
OPENAI_DEFAULT_BASE = "https://api.openai.com/v1"
PROVIDER_KINDS: dict[str, str] = {
    "ollama": "ollama", "openai": "openai", "openai_compatible": "openai_compatible",
    "vllm": "openai_compatible", "lmstudio": "openai_compatible", "llamacpp": "openai_compatible",
}
"""Provider name (as written, lower-cased) → the kind of server it is."""
_ENV_KEYS = ("OLLAMA_HOST",)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEYS = ("provider", "model", "temperature", "max_tokens", "base_url", "api_key_env",
         "timeout_seconds", "top_p", "frequency_penalty", "presence_penalty")


@dataclass(frozen=True, slots=True)
class LLMSettings:
    """Everything one LLM agent needs to call its model (never the API key itself)."""

    agent: str
    """The agent's name."""
    provider: str
    """The provider as configured (lower-cased): ollama, openai, vllm, …"""
    model: str
    """Model name as the server knows it."""
    base_url: str = field(repr=False)
    """The chat API base the client uses, ending in `/v1` for ollama (shown as `display_url`)."""
    temperature: float = 0.7
    """Sampling temperature."""
    max_tokens: int | None = None
    """Maximum tokens to generate (None: the server's default)."""
    top_p: float | None = None
    """Nucleus sampling mass."""
    frequency_penalty: float | None = None
    """Frequency penalty."""
    presence_penalty: float | None = None
    """Presence penalty."""
    timeout_seconds: float | None = None
    """The client's timeout of one call (None: no timeout of its own)."""
    api_key_env: str | None = None
    """Environment variable the runner reads the key from (None: no key, for local servers)."""
    system_prompt: str = ""
    """`[agents.NAME] system_prompt`."""
    role: str = ""
    """`[agents.NAME] role` (added to the system message)."""
    prompt: str | None = None
    """User-message template; None sends the input data as JSON."""
    output_key: str = ""
    """The data key that receives the reply text."""

    @property
    def kind(self) -> str:
        """ollama | openai | openai_compatible."""
        return PROVIDER_KINDS[self.provider]

    @property
    def display_url(self) -> str:
        """`base_url` without any `user:password@` part, for messages and listings."""
        parts = urlsplit(self.base_url)
        if "@" not in parts.netloc:
            return self.base_url
        return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))

    def describe(self) -> dict[str, Any]:
        """What `/v1/agents` and `actorflow validate` show: provider, model, URL (no key)."""
        return {"provider": self.provider, "model": self.model, "base_url": self.display_url,
                "output_key": self.output_key}


def captured_env() -> dict[str, str]:
    """The environment variables LLM defaults depend on, read in the loading process."""
    return {key: os.environ[key] for key in _ENV_KEYS if os.environ.get(key)}


def _merged(cfg: AgentFlowSchema, name: str) -> dict[str, Any]:
    """`[llm]` with `[agents.NAME.llm]` over it (keys the agent sets win)."""
    values = {key: getattr(cfg.llm, key) for key in _KEYS}
    override = cfg.agents[name].llm
    if override is not None:
        values.update({key: getattr(override, key) for key in _KEYS
                       if getattr(override, key) is not None})
        if override.provider is not None:
            # Another provider: [llm]'s address and key are not its own (never send a key elsewhere).
            for key in ("base_url", "api_key_env"):
                values[key] = getattr(override, key)
    return values


def _candidates(cfg: AgentFlowSchema) -> list[str]:
    """Agents that are LLM agents unless a handler is registered in code."""
    return [name for name, agent in cfg.agents.items()
            if agent.enabled and not agent.handler and _merged(cfg, name)["provider"]]


def _api_base(kind: str, base_url: str | None, env: Mapping[str, str]) -> str:
    if kind == "ollama":
        host = (base_url or env.get("OLLAMA_HOST") or OLLAMA_DEFAULT_HOST).strip().rstrip("/")
        if "://" not in host:
            host = f"http://{host}"  # $OLLAMA_HOST is often written "localhost:11434"
        return host if host.endswith("/v1") else f"{host}/v1"
    return (base_url or OPENAI_DEFAULT_BASE).strip().rstrip("/")


def llm_settings(cfg: AgentFlowSchema, name: str, env: Mapping[str, str]) -> LLMSettings | None:
    """The resolved settings of agent `name`, or None when the file does not make it an LLM agent."""
    if name not in _candidates(cfg):
        return None
    values = _merged(cfg, name)
    provider = values["provider"].strip().lower()
    kind = PROVIDER_KINDS[provider]
    agent = cfg.agents[name]
    key_env = values["api_key_env"] or ("OPENAI_API_KEY" if kind == "openai" else None)
    return LLMSettings(
        agent=name,
        provider=provider,
        model=values["model"],
        base_url=_api_base(kind, values["base_url"], env),
        temperature=0.7 if values["temperature"] is None else values["temperature"],
        max_tokens=values["max_tokens"],
        top_p=values["top_p"],
        frequency_penalty=values["frequency_penalty"],
        presence_penalty=values["presence_penalty"],
        timeout_seconds=values["timeout_seconds"],
        api_key_env=key_env,
        system_prompt=agent.system_prompt,
        role=agent.role,
        prompt=agent.prompt,
        output_key=agent.output_key or f"{name}_response",
    )


def llm_problems(cfg: AgentFlowSchema) -> list[tuple[Loc, str]]:
    """Set-up mistakes of the LLM agents: a missing model, `openai_compatible` without base_url.

    A key missing from `[llm]` is reported once, naming every agent it affects; one missing
    for an agent whose `[agents.NAME.llm]` picks its own provider is reported there.
    """
    shared: dict[Loc, tuple[str, list[str]]] = {}
    problems: list[tuple[Loc, str]] = []
    tables = {("llm",): cfg.llm, **{("agents", n, "llm"): a.llm for n, a in cfg.agents.items() if a.llm}}
    for loc, table in tables.items():
        if table.api_key_env is not None and not _ENV_NAME.fullmatch(table.api_key_env):
            # The value is not quoted: whoever got this wrong may have pasted the key itself.
            problems.append(((*loc, "api_key_env"), "must name the environment variable that "
                             "holds the API key (letters, digits, _), never the key itself"))
    for name in _candidates(cfg):
        values, own = _merged(cfg, name), cfg.agents[name].llm
        provider = values["provider"]
        missing = []
        if not values["model"]:
            missing.append(("model", f'provider "{provider}" needs a model (e.g. model = "gemma3:1b")'))
        if PROVIDER_KINDS[provider.strip().lower()] == "openai_compatible" and not values["base_url"]:
            missing.append(("base_url", f'provider "{provider}" needs the server\'s API base, e.g. '
                                        'base_url = "http://localhost:8000/v1"'))
        for key, text in missing:
            if own is not None and own.provider is not None:
                problems.append((("agents", name, "llm", key), f'{text} for LLM agent "{name}"'))
            else:
                shared.setdefault(("llm", key), (text, []))[1].append(name)
    for loc, (text, names) in shared.items():
        agents = ", ".join(f'"{n}"' for n in names)
        problems.append((loc, f"{text} for the LLM agent(s) {agents} (agents with no handler); set "
                              f"it in [llm] or in [agents.{toml_key(names[0])}.llm]"))
    return problems
