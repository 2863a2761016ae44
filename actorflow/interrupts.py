"""`Interrupt`: a handler pauses its dispatch for a person (human in the loop).

A handler raises `Interrupt(reason, payload)`. It is not a failure: no retry, no circuit-breaker
charge, no AGENT_ERROR callback. The dispatch stops there and returns a `DispatchResult` with
`interrupted == True` and `interrupt == {"agent", "reason", "payload"}`;
`runner.resume(event_id, data)` runs the interrupted agent again with `data` merged into its
input state's data and continues the pattern, replaying every run that had finished (see
runtime/steps.py). Plain Python, no Ray import: it is raised in agent processes and crosses
the actor boundary as a value.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Interrupt"]


class Interrupt(Exception):
    """Raised by a handler to stop its dispatch until `runner.resume(event_id, data)`."""

    def __init__(self, reason: str, payload: Any = None) -> None:
        super().__init__(reason)
        self.reason = reason
        """Why the dispatch waits (shown to the person who resumes it)."""
        self.payload = payload
        """Anything the person needs to decide (JSON values when a journal records it)."""
        self.agent: str | None = None
        """The interrupted agent (path-qualified inside a nested flow); set by the runtime."""
        self.step: str | None = None
        """The interrupted step's key (runtime/steps.py); set by the runtime."""

    def __reduce__(self):
        return (_rebuild, (self.reason, self.payload, self.agent, self.step))

    def describe(self) -> dict[str, Any]:
        """What `DispatchResult.interrupt` holds."""
        return {"agent": self.agent, "reason": self.reason, "payload": self.payload}


def _rebuild(reason: str, payload: Any, agent: str | None, step: str | None) -> Interrupt:
    interrupt = Interrupt(reason, payload)
    interrupt.agent, interrupt.step = agent, step
    return interrupt
