"""Hooks: named callbacks run by the supervisor around event handling and agent runs.

Callbacks run in registration order, the hook's own first and then those registered for
`Hook.ALL`. A callback gets a `CallbackArgs` and returns a `State` (which replaces the state
passed on) or None (which keeps it); it may be sync or `async`.
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Union

from actorflow.events import AgentResult, Event, State

__all__ = ["Hook", "CallbackArgs", "Callback", "CallbackRegistry"]


class Hook(str, enum.Enum):
    """Points in a dispatch where callbacks run."""

    BEFORE_EVENT_HANDLING = "before_event_handling"
    AFTER_EVENT_HANDLING = "after_event_handling"
    BEFORE_AGENT_RUN = "before_agent_run"
    AFTER_AGENT_RUN = "after_agent_run"
    AGENT_ERROR = "agent_error"
    ALL = "all"


@dataclass(slots=True)
class CallbackArgs:
    """What a callback sees."""

    event: Event
    """The event being dispatched."""
    state: State
    """The state at this point (an agent's input before it runs, its output after)."""
    hook: Hook = Hook.ALL
    """The hook that fired (useful in `Hook.ALL` callbacks)."""
    agent_id: str | None = None
    """The agent, for agent hooks."""
    agent_result: AgentResult | None = None
    """The agent's result, for AFTER_AGENT_RUN."""
    error: BaseException | None = None
    """The failure, for AGENT_ERROR and a failed AFTER_EVENT_HANDLING."""
    mode: str = "route"
    """The orchestration mode."""


Callback = Callable[[CallbackArgs], Union[State, None, Awaitable[Union[State, None]]]]


class CallbackRegistry:
    """Callbacks by hook, in registration order; names are unique per hook."""

    def __init__(self) -> None:
        self._callbacks: dict[Hook, dict[str, Callback]] = {hook: {} for hook in Hook}

    def register(self, hook: Hook | str, name: str, fn: Callback) -> None:
        hook = Hook(hook)
        if not callable(fn):
            raise TypeError(f"callback {name!r} for {hook.name} is not callable: {fn!r}")
        if name in self._callbacks[hook]:
            raise ValueError(f"a callback named {name!r} is already registered for {hook.name}")
        self._callbacks[hook][name] = fn

    def copy(self) -> CallbackRegistry:
        """A snapshot: later registrations do not change it."""
        registry = CallbackRegistry()
        registry._callbacks = {hook: dict(callbacks) for hook, callbacks in self._callbacks.items()}
        return registry

    def callbacks_for(self, hook: Hook) -> list[tuple[str, Callback]]:
        """The hook's own callbacks, then the ALL callbacks."""
        own = list(self._callbacks[hook].items())
        return own if hook is Hook.ALL else own + list(self._callbacks[Hook.ALL].items())

    def __bool__(self) -> bool:
        return any(self._callbacks.values())

    def sees_input(self) -> bool:
        """True when a callback may receive an agent's input state (and so may change it)."""
        return any(self._callbacks[hook] for hook in (Hook.BEFORE_AGENT_RUN, Hook.AGENT_ERROR, Hook.ALL))

    async def fire(self, hook: Hook, args: CallbackArgs) -> bool:
        """Run the hook's callbacks in order; each returned State replaces `args.state`.

        Returns whether any callback returned a State. A callback that raises stops the chain
        and the exception propagates.
        """
        args.hook = hook
        replaced = False
        for _, fn in self.callbacks_for(hook):
            returned: Any = fn(args)
            if inspect.isawaitable(returned):
                returned = await returned
            if isinstance(returned, State):
                args.state, replaced = returned, True
        return replaced
