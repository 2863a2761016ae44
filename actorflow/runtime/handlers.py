"""Turning what users register (a function, an Agent subclass, "module:attr") into a handler."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from actorflow.agent import Agent
from actorflow.exceptions import ConfigError

__all__ = ["resolve_handler", "import_handler"]


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
