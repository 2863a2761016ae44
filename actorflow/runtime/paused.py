"""Interrupted dispatches without a journal: kept in the supervisors' memory.

The runner's `result`/`pending`/`wait`/`resume` ask its supervisors, which hold each
interrupted dispatch's event, settings and finished steps until it is resumed (see
`SupervisorCore.resume`). Only interrupted dispatches are known here: without a journal a
dispatch that finished is not kept, and a supervisor that dies takes its interrupts with it.
`JournaledDispatches` (runtime/journaled.py) is the same interface over a journal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ray.exceptions import RayError

from actorflow.events import DispatchResult, Event
from actorflow.exceptions import DispatchNotFoundError, DispatchNotResumableError
from actorflow.runtime.supervisor import DispatchOutcome

if TYPE_CHECKING:
    from actorflow.runtime.runner import Runner

__all__ = ["PausedDispatches"]


class PausedDispatches:
    """The interrupted dispatches a runner's supervisors hold in memory."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    def _all(self) -> dict[str, DispatchResult]:
        merged: dict[str, DispatchResult] = {}
        for paused in self.runner._ask("paused_results"):
            merged.update(paused)
        return merged

    def pending(self) -> list[str]:
        return list(self._all())

    def result(self, event_id: str) -> DispatchResult | None:
        return self._all().get(event_id)

    def wait(self, event_id: str, timeout: float | None) -> DispatchOutcome:
        result = self.result(event_id)
        if result is None:
            raise _not_found(event_id)
        return DispatchOutcome(result)

    def resume(self, event_id: str, data: Mapping[str, Any]) -> DispatchOutcome:
        runner, running = self.runner, False
        for slot in range(runner.config.runtime.supervisors):
            try:
                outcome = runner._live_supervisor(slot).resume.remote(event_id, dict(data))
                outcome = outcome.future().result()
            except RayError as err:
                raise runner._translate(err, Event("resume", id=event_id)) from err
            if isinstance(outcome, DispatchOutcome):
                return outcome
            running = running or outcome == "running"
        if running:
            raise DispatchNotResumableError(f"dispatch {event_id!r} is being resumed already", event_id=event_id,
                                            status="running")
        raise _not_found(event_id)


def _not_found(event_id: str) -> DispatchNotFoundError:
    return DispatchNotFoundError(
        f"no interrupted dispatch {event_id!r} in this runner (without a journal, only interrupted dispatches "
        "are kept, in the runner's memory)", event_id=event_id,
    )
