"""`/v1/dispatches/{event_id}`: where a dispatch stands, and resuming an interrupted one.

    GET  /v1/dispatches/{event_id}          {"event_id", "status", "result"}; 404 unknown
    POST /v1/dispatches/{event_id}/resume   body {"data": {...}} (optional) → the final result,
                                            as /v1/dispatch answers; 404 unknown, 409 finished
                                            or still running

The runner answers from its journal (`[runtime] journal`); without one it knows only the
interrupted dispatches it holds in memory (others are 404). `dispatch_status` blocks (the
journal is a database): the route calls it in a thread.
"""

from __future__ import annotations

from typing import Any

from actorflow.events import DispatchResult
from actorflow.exceptions import DispatchNotFoundError
from actorflow.serve.jsonio import check_strict
from actorflow.serve.schema import ResumeRequest

__all__ = ["dispatch_status", "resume_data"]


def dispatch_status(runner: Any, event_id: str) -> dict[str, Any]:
    """The `DispatchStatusResponse` body for `event_id`; DispatchNotFoundError when unknown."""
    for look in range(2):  # a second look: it may have ended between the two questions
        result: DispatchResult | None = runner.result(event_id)  # finished or interrupted
        if result is not None:
            status = "interrupted" if result.interrupted else "finished"
            return {"event_id": event_id, "status": status, "result": result.to_dict()}
        if look == 0 and event_id in runner.pending():
            return {"event_id": event_id, "status": "running", "result": None}
    raise DispatchNotFoundError(f"no dispatch with event id {event_id!r} is known", event_id=event_id)


def resume_data(raw: bytes) -> dict[str, Any] | None:
    """The `data` of a resume request's body (empty body: None); 400/422 for a bad one."""
    if not raw.strip():
        return None
    check_strict(raw)
    return ResumeRequest.model_validate_json(raw).data
