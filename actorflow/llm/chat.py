"""One chat call over the OpenAI-compatible protocol, streamed, through the `openai` client."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from actorflow.config.llm import LLMSettings
from actorflow.llm.errors import map_error

if TYPE_CHECKING:
    import openai

__all__ = ["ChatReply", "make_client", "chat", "PLACEHOLDER_KEY"]

PLACEHOLDER_KEY = "not-needed"
"""Sent as the bearer token to servers configured without api_key_env (Ollama, a local vLLM):
the client insists on some key, and they ignore it."""

OnToken = Callable[[str], Any]


@dataclass(frozen=True, slots=True)
class ChatReply:
    """The accumulated reply of one streamed call."""

    text: str
    """The reply text."""
    usage: dict[str, int] | None
    """`{"input_tokens", "output_tokens"}` when the server reported usage, else None."""
    model: str
    """The model that answered (as the server names it; the configured name if it does not)."""


def make_client(settings: LLMSettings, api_key: str | None) -> openai.AsyncOpenAI:
    """The agent's one client: connection reuse across calls; `max_retries=0` so actorflow's
    retry policy (`[orchestration.retry]`) is the only one in force."""
    import openai  # imported by LLM agent actors only, not by every process that imports actorflow

    return openai.AsyncOpenAI(
        api_key=api_key or PLACEHOLDER_KEY,
        base_url=settings.base_url,
        max_retries=0,
        timeout=settings.timeout_seconds,
    )


async def chat(client: openai.AsyncOpenAI, settings: LLMSettings, messages: list[dict[str, str]], *,
               on_token: OnToken | None = None, secret: str | None = None) -> ChatReply:
    """Ask for a streamed reply (with usage in the stream); accumulate text and usage.

    `on_token(text)` is called with each chunk's text as it arrives (token streaming to callers
    builds on it). Cancelling the awaiting task closes the HTTP response, so the server sees
    the connection go. Failures raise the `LLMError` that `map_error` gives.
    """
    options: dict[str, Any] = {"temperature": settings.temperature}
    for key in ("max_tokens", "top_p", "frequency_penalty", "presence_penalty"):
        if getattr(settings, key) is not None:
            options[key] = getattr(settings, key)
    parts: list[str] = []
    usage: dict[str, int] | None = None
    model = settings.model
    try:
        stream = await client.chat.completions.create(
            model=settings.model, messages=messages, stream=True,
            stream_options={"include_usage": True}, **options)
        async with stream:
            async for chunk in stream:
                model = chunk.model or model
                if chunk.usage is not None:
                    usage = {"input_tokens": chunk.usage.prompt_tokens or 0,
                             "output_tokens": chunk.usage.completion_tokens or 0}
                for choice in chunk.choices:
                    text = choice.delta.content if choice.delta else None
                    if text:
                        parts.append(text)
                        if on_token is not None:
                            on_token(text)
    except Exception as err:  # the client's errors, and transport errors while streaming
        raise map_error(err, settings, secret=secret) from None
    return ChatReply("".join(parts), usage, model)
