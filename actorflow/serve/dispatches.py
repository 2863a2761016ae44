"""`/v1/dispatches/{event_id}`: where a dispatch stands, and resuming an interrupted one.

    GET  /v1/dispatches/{event_id}          {"event_id", "status", "result"}; 404 unknown
    POST /v1/dispatches/{event_id}/resume   body {"data": {...}} (optional) → the final result,
                                            as /v1/dispatch answers; 404 unknown, 409 finished
                                            or still running

The runner answers from its journal (`[runtime] journal`) or, without one, from its memory.
These functions block (the journal is a database): the routes call them in a thread.
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
    result: DispatchResult | None = runner.result(event_id)
    if result is not None:
        status = "interrupted" if result.interrupted else "finished"
        return {"event_id": event_id, "status": status, "result": result.to_dict()}
    if any(_event_id(pending) == event_id for pending in runner.pending()):
        return {"event_id": event_id, "status": "running", "result": None}
    raise DispatchNotFoundError(f"no dispatch with event id {event_id!r} is known", event_id=event_id)


def resume_data(raw: bytes) -> dict[str, Any] | None:
    """The `data` of a resume request's body (empty body: None); 400/422 for a bad one."""
    if not raw.strip():
        return None
    check_strict(raw)
    return ResumeRequest.model_validate_json(raw).data


def _event_id(pending: Any) -> str | None:
    """A `runner.pending()` entry's event id (a record, a result, or a plain id)."""
    if isinstance(pending, str):
        return pending
    if isinstance(pending, dict):
        return pending.get("event_id")
    return getattr(pending, "event_id", None)
