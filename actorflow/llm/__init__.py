"""LLM agents: agents made from configuration (a system prompt and a model, no code).

`agent` (LLMAgent, the handler the runner builds for each one), `prompt` (the messages),
`chat` (one streamed call through the `openai` client), `errors` (the failures and their
mapping). The settings themselves are resolved with the config (`actorflow.config.llm`).
"""

from actorflow.config.llm import LLMSettings
from actorflow.llm.agent import LLMAgent, Secret, llm_handlers, read_api_key
from actorflow.llm.chat import ChatReply, chat, make_client
from actorflow.llm.errors import (
    LLMAuthenticationError,
    LLMConnectionError,
    LLMError,
    LLMModelNotFoundError,
    LLMPromptError,
    LLMRateLimitError,
    LLMRequestError,
    LLMServerError,
    LLMTimeoutError,
    LLMUnavailableError,
)
from actorflow.llm.prompt import render_messages, render_prompt

__all__ = [
    "LLMSettings",
    "LLMAgent",
    "Secret",
    "llm_handlers",
    "read_api_key",
    "ChatReply",
    "chat",
    "make_client",
    "render_messages",
    "render_prompt",
    "LLMError",
    "LLMUnavailableError",
    "LLMConnectionError",
    "LLMRateLimitError",
    "LLMServerError",
    "LLMTimeoutError",
    "LLMModelNotFoundError",
    "LLMAuthenticationError",
    "LLMRequestError",
    "LLMPromptError",
]
