"""Where an agent's streamed text chunks go during one call: a context variable.

The agent actor's `handle_stream` (used only when the caller streams the dispatch) sets it
for the call's task; `LLMAgent` sends each chunk of the reply there. A context variable, not an
attribute of the agent, so concurrent calls on one actor never mix their tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar

__all__ = ["token_sink"]

token_sink: ContextVar[Callable[[str], None] | None] = ContextVar("actorflow_token_sink", default=None)
