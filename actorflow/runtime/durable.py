"""Durable dispatches: how the runtime's values go into the journal and come back.

Who does what (DESIGN "Durable dispatches (journal) and interrupts"):
- the runner (driver) opens the journal at `start()` (a bad URL fails there, before anything
  starts), records each dispatch before it is sent (`begin`: idempotency by event id), claims
  unfinished dispatches and keeps its leases (`JournalKeeper`, a thread), reads results;
- the supervisor opens the same journal in its own process and writes what happens inside a
  dispatch: each finished step (before the pattern goes on), then the result or the interrupt.
  Steps are written where they happen, so no extra round trip to the driver is on the path of
  a dispatch, and a result is recorded even when nobody waits for it (a recovered dispatch).

Everything stored is JSON: the event (`Event.to_dict`), the per-event orchestration (the
validated `OrchestrationConfig`, or None for the file's), each step's `AgentRun.to_dict()` and
output `State.to_dict()` (or `{"failed": ...}`: the type, message, agent and cause of a failure
no AGENT_ERROR callback recovered), and the result (`DispatchResult.to_dict()` plus `raised`:
the error's class name and attributes, so that an idempotent re-dispatch raises the same error
type).
"""

from __future__ import annotations

import builtins
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from actorflow import exceptions
from actorflow.config import OrchestrationConfig
from actorflow.events import AgentRun, DispatchResult, Event, State
from actorflow.exceptions import ActorflowError, AgentFailedError
from actorflow.runtime.steps import Replay

if TYPE_CHECKING:
    from actorflow.journal import DispatchRecord, Journal

__all__ = [
    "JournalKeeper", "event_record", "event_of", "settings_record", "settings_of", "result_record",
    "outcome_parts", "step_output_record", "replay_of", "owner_id", "RESUME_STEP",
]

logger = logging.getLogger(__name__)


def owner_id() -> str:
    """A runner's lease owner: host, process and a random part (unique per runner)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def event_record(event: Event) -> dict[str, Any]:
    return event.to_dict()


def event_of(record: dict[str, Any]) -> Event:
    return Event(record["target"], record.get("data"), record.get("metadata"), id=record["id"],
                 source=record.get("source"), timestamp=datetime.fromisoformat(record["timestamp"]))


def settings_record(settings: OrchestrationConfig | None) -> dict[str, Any] | None:
    return settings.model_dump(mode="json") if settings is not None else None


def settings_of(record: dict[str, Any] | None) -> OrchestrationConfig | None:
    return OrchestrationConfig.model_validate(record) if record is not None else None


def result_record(result: DispatchResult, error: BaseException | None) -> dict[str, Any]:
    """The result as the journal keeps it (with the raised error's class and attributes)."""
    record = result.to_dict()
    if error is not None:
        attrs = {k: v for k, v in vars(error).items() if k != "result" and _plain(v)}
        record["raised"] = {"type": type(error).__name__, "message": str(error), "attrs": attrs}
    return record


def outcome_parts(record: dict[str, Any]) -> tuple[DispatchResult, BaseException | None]:
    """(result, error) of a recorded result: the error is of the recorded type (an actorflow
    error or a built-in one), carrying `.result`; else an ActorflowError with its message."""
    result = DispatchResult.from_dict(record)
    raised = record.get("raised")
    if raised is None:
        return result, None
    cls = getattr(exceptions, raised["type"], None) or getattr(builtins, raised["type"], None)
    if not (isinstance(cls, type) and issubclass(cls, Exception)):
        cls = ActorflowError
    error = cls.__new__(cls)
    Exception.__init__(error, raised["message"])
    try:
        error.__dict__.update(raised.get("attrs") or {})
    except AttributeError:  # a built-in exception without a __dict__
        pass
    return result, error


def step_output_record(output: State | AgentFailedError) -> dict[str, Any]:
    """A step's output as the journal keeps it: the state, or the unrecovered failure."""
    if isinstance(output, AgentFailedError):
        failure = {"type": type(output).__name__, "message": str(output), "agent": output.agent, "cause": output.cause}
        return {"failed": failure}
    return output.to_dict()


def _step_output_of(record: dict[str, Any] | None) -> State | AgentFailedError:
    failed = (record or {}).get("failed")
    if failed is None:
        return State.from_dict(record or {})
    cls = getattr(exceptions, failed["type"], None)
    if not (isinstance(cls, type) and issubclass(cls, AgentFailedError)):
        cls = AgentFailedError
    return cls(failed["message"], agent=failed.get("agent"), cause=failed.get("cause"))


RESUME_STEP = "@resume:"
"""Prefix of the pseudo-step that records a resume's data under the interrupted step's key, so a
resumed dispatch that crashes is recovered with its data."""


def replay_of(record: DispatchRecord, data: dict[str, Any] | None = None) -> Replay:
    """The replay of a recorded dispatch: its steps, and the interrupted step with the resume's
    data (given, or recorded by an earlier resume that did not finish)."""
    steps, resumes = {}, {}
    for step in record.steps:
        if step.step.startswith(RESUME_STEP):
            resumes[step.step[len(RESUME_STEP):]] = (step.output or {}).get("data") or {}
        else:
            steps[step.step] = (AgentRun(**step.run), _step_output_of(step.output))
    interrupted = (record.interrupt or {}).get("step")
    if interrupted is None or interrupted in steps:
        return Replay(steps)
    if data is None:
        data = resumes.get(interrupted)
    return Replay(steps, interrupted, data) if data is not None else Replay(steps)


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool)) or (
        isinstance(value, list) and all(isinstance(item, (str, int, float, bool)) for item in value)
    )


class JournalKeeper:
    """The runner's side of the leases: a thread that renews this runner's leases and claims
    unfinished dispatches whose owner stopped renewing (a runner that died), handing each to
    `recover(record)`. Ticks every third of the lease; `stop()` releases the leases at once."""

    def __init__(self, journal: Journal, lease_seconds: float, recover: Callable[[DispatchRecord], None],
                 active: Callable[[str], bool]) -> None:
        self.journal = journal
        self.owner = owner_id()
        self.lease = lease_seconds
        self._recover = recover
        self._active = active
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="actorflow-journal-keeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        try:
            self.journal.release(self.owner)
        except ActorflowError as err:
            logger.warning("releasing the journal leases of %s: %s", self.owner, err)

    def claim(self, event_id: str) -> DispatchRecord | None:
        return self.journal.claim(event_id, self.owner, self.lease)

    def _claimable(self, record: DispatchRecord) -> bool:
        """Worth a claim: no live lease of another owner. (Leases are on the database's clock;
        this look uses the local one, so a skew only delays a takeover — the claim decides.)"""
        return (record.owner in (None, self.owner) or record.lease_until is None
                or record.lease_until <= time.time())

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.journal.renew(self.owner, self.lease)
                self.recover_unfinished()
            except Exception as err:  # the journal may be briefly unreachable: try again next tick
                logger.warning("journal keeper: %s", err)
            self._stopping.wait(self.lease / 3)

    def recover_unfinished(self) -> None:
        """Claim every running dispatch nobody holds (not one of ours in flight) and recover it."""
        for record in self.journal.unfinished(("running",)):
            if self._stopping.is_set():
                return
            if self._active(record.event_id) or not self._claimable(record):
                continue
            claimed = self.claim(record.event_id)
            if claimed is not None:
                self._recover(claimed)
