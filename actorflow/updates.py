"""`DispatchUpdate`: what `Runner.stream()` yields while a dispatch runs (DESIGN "Streaming a dispatch").

Plain Python, no Ray import: updates are made in the supervisor, cross to the caller as items of
a Ray streaming generator, and are rendered as SSE messages and CLI lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from actorflow.events import AgentRun, DispatchResult

__all__ = ["DispatchUpdate", "UpdateKind"]

UpdateKind = Literal["dispatch_started", "agent_started", "agent_finished", "token", "dispatch_finished"]


@dataclass(frozen=True, slots=True)
class DispatchUpdate:
    """One thing that happened in a dispatch, as it happened."""

    kind: UpdateKind
    """dispatch_started | agent_started | agent_finished | token | dispatch_finished."""
    event_id: str
    """The dispatched event's id."""
    at: float
    """Seconds since the dispatch started."""
    agent: str | None = None
    """The agent (agent_started, agent_finished, token)."""
    run: AgentRun | None = None
    """agent_finished: the attempt's AgentRun."""
    text: str | None = None
    """token: an LLM agent's streamed text chunk."""
    result: DispatchResult | None = None
    """dispatch_finished: the DispatchResult (also when the dispatch failed)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "event_id": self.event_id,
            "at": self.at,
            "agent": self.agent,
            "run": self.run.to_dict() if self.run is not None else None,
            "text": self.text,
            "result": self.result.to_dict() if self.result is not None else None,
        }

    def describe(self) -> str:
        """One human-readable line (the CLI's `--stream` output)."""
        head = f"{self.at:8.3f}s {self.kind}"
        if self.kind == "agent_finished" and self.run is not None:
            run = self.run
            line = f"{head} {run.agent} {run.status} in {run.duration:.3f}s (attempt {run.attempt})"
            return f"{line}: {run.error}" if run.error else line
        if self.kind == "token":
            return f"{head} {self.agent}: {self.text!r}"
        if self.kind == "dispatch_finished" and self.result is not None:
            result = self.result
            if result.interrupted and result.interrupt is not None:
                status = f"interrupted by {result.interrupt['agent']}: {result.interrupt['reason']}"
            else:
                status = "ok" if result.ok else f"failed: {result.error}"
            return f"{head} {result.mode} {status} in {result.duration:.3f}s"
        return f"{head} {self.agent}" if self.agent else f"{head} {self.event_id}"
