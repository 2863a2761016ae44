"""`LLMAgent`: the handler of an agent configured with a system prompt and a model, no code."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from actorflow.agent import Agent
from actorflow.config.llm import LLMSettings
from actorflow.events import AgentResult, Event, State
from actorflow.exceptions import ConfigError
from actorflow.llm.chat import OnToken, chat, make_client
from actorflow.llm.prompt import render_messages
from actorflow.llm import tokens
from actorflow import tracing

__all__ = ["LLMAgent", "Secret", "read_api_key"]


class Secret:
    """A value that never shows itself in a repr, a str or a log line."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __reduce__(self):  # crosses to the agent actor as a value, still wrapped
        return (Secret, (self._value,))


def read_api_key(settings: LLMSettings, environ: dict[str, str] | None = None) -> Secret | None:
    """The key from `api_key_env`, read in the process that starts the runner (None: no key)."""
    if not settings.api_key_env:
        return None
    value = (os.environ if environ is None else environ).get(settings.api_key_env, "")
    if not value.strip():
        raise ConfigError(
            f'LLM agent "{settings.agent}" ({settings.provider}) reads its API key from '
            f"${settings.api_key_env}, which is not set in the environment of the process "
            f"starting the runner; export {settings.api_key_env}=... (or set api_key_env to "
            "the variable that holds it)", key=f"agents.{settings.agent}.llm.api_key_env")
    return Secret(value.strip())


class LLMAgent(Agent):
    """Calls the chat API once per message: renders the prompt from the input state, streams the
    reply, and returns the state with the reply in `data[output_key]`, meta `<name>_model`, and
    the token usage on the AgentResult.

    One `openai.AsyncOpenAI` client per agent actor, made in `on_start` and reused (its HTTP
    connections are kept alive); `max_retries=0` leaves retrying to actorflow's policy.
    """

    streams_tokens = True
    """A streamed dispatch calls this agent through `handle_stream` (its reply's chunks become
    `token` updates)."""

    def __init__(self, settings: LLMSettings, api_key: Secret | None = None) -> None:
        self.settings = settings
        self.name = settings.agent
        self._api_key = api_key
        self._client: Any = None
        self.on_token: OnToken | None = None
        """Called with each chunk of reply text (a hook for token streaming to callers)."""

    def __repr__(self) -> str:
        s = self.settings
        return f"LLMAgent({s.agent!r}, provider={s.provider!r}, model={s.model!r}, base_url={s.display_url!r})"

    def _ensure_client(self) -> Any:
        if self._client is None:
            self._client = make_client(self.settings, self._api_key.reveal() if self._api_key else None)
        return self._client

    def on_start(self) -> None:
        self._ensure_client()

    async def run(self, event: Event, state: State) -> AgentResult:
        settings = self.settings
        messages = render_messages(settings, {key: state.get(key) for key in state.keys()})
        secret = self._api_key.reveal() if self._api_key else None
        on_token = self.on_token or tokens.token_sink.get()  # token_sink: set while the dispatch is streamed
        tracer = tracing.active()  # set up in this agent's process when tracing is on
        if tracer is None:
            reply = await chat(self._ensure_client(), settings, messages, on_token=on_token, secret=secret)
        else:
            with tracer.chat_span(settings.provider, settings.model, urlsplit(settings.base_url).hostname) as span:
                reply = await chat(self._ensure_client(), settings, messages, on_token=on_token, secret=secret)
                tracer.record_chat(span, reply.model, reply.usage)
        state.set(settings.output_key, reply.text)
        state.set_meta(f"{self.name}_model", settings.model)
        return AgentResult(state, usage=reply.usage)

    async def on_stop(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()


def llm_handlers(config: Any, skip: Any = ()) -> dict[str, LLMAgent]:
    """An `LLMAgent` for every agent the file makes an LLM agent, except those in `skip` (which
    have a handler); each with its API key read now, from this process's environment."""
    return {name: LLMAgent(settings, read_api_key(settings))
            for name, settings in config.llm_agents().items() if name not in skip}

