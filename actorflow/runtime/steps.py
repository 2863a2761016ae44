"""Step replay: the one mechanism behind crash recovery and interrupts.

Every `inv.call(agent, state, phase=, iteration=)` of a dispatch has a deterministic *step key*:
the agent, the phase, the iteration and which call with that triple it is (`"writer:::1"`,
`"critic::2:1"`). Patterns are deterministic given their input and the agents' outputs, so a
dispatch that runs again from its event reaches the same calls with the same keys. A nested
flow's calls carry the flow call's key as a prefix (`"research:::1/analyzer:::1"`).

A `StepLog` holds the finished steps of one dispatch — each step's last `AgentRun` and its output
state (an ok run, or a failure an AGENT_ERROR callback recovered), or the `AgentFailedError` of a
failure that no callback recovered (a branch collaborative tolerates must not run again). A call
whose key is in the log returns the recorded output, or raises the recorded failure again, without
calling the agent or firing callbacks, and its original `AgentRun` is recorded again (so the
result shows every run once, as it ran). With a journal each finished step is also written to
it (durable before the pattern goes on); without one the log lives in memory only, which is all
an interrupt needs to be resumed by the same runner.

A `Replay` is what a rerun starts from: the steps recorded so far (from the journal after a
crash, or from memory after an interrupt) and, for `runner.resume`, the interrupted step's key
and the data to merge into that step's input.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from actorflow.events import AgentRun, State
from actorflow.exceptions import AgentFailedError

__all__ = ["Step", "Replay", "StepLog", "StepWriter", "failure_again"]

Step = tuple[AgentRun, State | AgentFailedError]
"""A finished step: its last AgentRun and its output state, or its unrecovered failure."""

StepWriter = Callable[[str, AgentRun, State | AgentFailedError], Awaitable[None]]
"""Writes one finished step durably (the supervisor's journal writer)."""


@dataclass(slots=True)
class Replay:
    """What a rerun of a dispatch starts from (sent by the runner with the dispatch)."""

    steps: dict[str, Step] = field(default_factory=dict)
    """Finished steps by key: their calls return the recorded output."""
    resume_step: str | None = None
    """The interrupted step `runner.resume` reruns, or None (crash recovery)."""
    resume_data: dict[str, Any] | None = None
    """Merged into the resumed step's input state's data."""


class StepLog:
    """The finished steps of one dispatch, shared by its nested flows' invocations."""

    __slots__ = ("done", "write", "resume")

    def __init__(self, replay: Replay | None = None, write: StepWriter | None = None) -> None:
        self.done: dict[str, Step] = dict(replay.steps) if replay is not None else {}
        """Every finished step: replayed ones and the ones this run finished."""
        self.write = write
        """The journal writer, or None (no journal: nothing is written)."""
        self.resume: tuple[str, dict[str, Any]] | None = (
            (replay.resume_step, dict(replay.resume_data or {}))
            if replay is not None and replay.resume_step is not None else None
        )
        """(key, data) of the step to rerun with `data` merged into its input; used once."""

    def resumed_input(self, key: str, state: State) -> State:
        """`state`, with the resume data merged in when `key` is the resumed step."""
        if self.resume is None or self.resume[0] != key:
            return state
        data, self.resume = self.resume[1], None
        state = state.clone()
        for name, value in data.items():
            state.set(name, value)
        return state

    def snapshot(self) -> dict[str, Step]:
        """A copy of the finished steps that nothing done to the live states reaches."""
        return {
            key: (run, output.clone() if isinstance(output, State) else output)
            for key, (run, output) in self.done.items()
        }


def failure_again(failure: AgentFailedError) -> AgentFailedError:
    """A new failure of the same type, message, agent and cause (no traceback, no result)."""
    return type(failure)(str(failure), agent=failure.agent, cause=failure.cause)
