"""Turning what users register (a function, an Agent subclass, "module:attr") into a handler."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from actorflow.agent import Agent
from actorflow.exceptions import ConfigError
from actorflow.runtime.limits import ASYNC_AGENT_CONCURRENCY, SYNC_AGENT_CONCURRENCY

__all__ = ["resolve_handler", "import_handler", "agent_concurrency"]

ASYNC_DEFAULT_CONCURRENCY = ASYNC_AGENT_CONCURRENCY
"""Messages an async handler or LLM agent takes at once when `max_concurrency` is not set."""


def import_handler(spec: str, *, agent: str | None = None) -> Any:
    """Import `package.module:attribute`; a ConfigError says which agent and what went wrong."""
    where = f" for agent {agent!r}" if agent else ""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f'handler{where} must look like "package.module:attribute", got {spec!r}', key=agent)
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(f"handler {spec!r}{where} cannot be imported: {err}", key=agent) from err
    target: Any = module
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ConfigError(
                f"handler {spec!r}{where}: module {module_name!r} has no attribute {attr!r}", key=agent
            ) from None
    return resolve_handler(target, agent=agent)


def resolve_handler(handler: Any, *, agent: str | None = None) -> Any:
    """Check a handler: a callable `(event, state)`, an Agent subclass, or a "module:attr" string."""
    if isinstance(handler, str):
        return import_handler(handler, agent=agent)
    if inspect.isclass(handler):
        if issubclass(handler, Agent):
            return handler
        raise TypeError(
            f"handler for agent {agent!r} is the class {handler.__name__}, which is not an actorflow.Agent subclass"
        )
    if isinstance(handler, Agent):
        raise TypeError(
            f"register the Agent subclass itself ({type(handler).__name__}), not an instance: "
            "it is instantiated inside the agent's actor"
        )
    if not callable(handler):
        raise TypeError(f"handler for agent {agent!r} must be callable, got {handler!r}")
    return handler


def agent_concurrency(max_concurrency: int | None, handler: Any) -> int:
    """`[agents.NAME] max_concurrency`, or by handler kind when unset: one message at a time
    for a synchronous handler, 100 for an async handler or an LLM agent (interleaved on the
    actor's one event loop, so its state stays single-threaded)."""
    if max_concurrency is not None:
        return max_concurrency
    from actorflow.runtime.agent_actor import is_async_handler

    return ASYNC_AGENT_CONCURRENCY if is_async_handler(handler) else SYNC_AGENT_CONCURRENCY
