"""HTTP status codes for actorflow's errors, and the JSON error body every failure returns.

    400 MalformedBody                   the body is empty, not JSON, or not strict JSON (NaN, Infinity)
    401 Unauthorized                    `[serve] api_key_env` is set and no valid Bearer key came
    404 AgentNotFoundError              no such agent, or an agent with no handler
    404 DispatchNotFoundError           no dispatch with that event id (GET/resume /v1/dispatches/…)
    409 DispatchNotResumableError       resume of a dispatch that finished or is still running
    413 BodyTooLarge                    the body exceeds `[serve] max_body_bytes`
    422 ValidationError                 the JSON does not match `DispatchRequest`
    422 AgentFailedError                an agent failed on this event (sequential, route, loop)
    422 FailureThresholdExceededError   too many collaborative agents failed on it
    429 MailboxFullError                the agent's mailbox is full: back off and retry
    503 CircuitOpenError                the agent's breaker is open: retry after its reset timeout
    503 ActorflowError                  the runtime cannot take the dispatch (stopping, supervisor lost,
                                        the journal's database unreachable)
    503 Overloaded                      the replica already runs `[serve] max_ongoing_requests` dispatches
    503 Draining                        the server is stopping: it finishes what it has, takes nothing new
    504 DispatchTimeoutError            the orchestration deadline expired
    500 anything else                   a bug in actorflow

A failed agent is 422, not 5xx: the request was valid and the server worked, but the agents
could not process this event (usually because of what is in `data`); the body carries the
partial result, with each agent's error. 5xx is kept for the server side being unavailable
(503, 504) or broken (500). Every 429 and 503 carries `Retry-After` (seconds).
"""

from __future__ import annotations

from typing import Any

from actorflow.events import DispatchResult
from actorflow.exceptions import (
    ActorflowError,
    AgentFailedError,
    AgentNotFoundError,
    CircuitOpenError,
    ConfigError,
    DispatchNotFoundError,
    DispatchNotResumableError,
    DispatchTimeoutError,
    FailureThresholdExceededError,
    MailboxFullError,
)

__all__ = ["RequestError", "status_of", "status_by_name", "error_body"]

_STATUS: dict[type[BaseException], int] = {
    AgentNotFoundError: 404,
    DispatchNotFoundError: 404,
    DispatchNotResumableError: 409,
    MailboxFullError: 429,
    CircuitOpenError: 503,
    DispatchTimeoutError: 504,
    AgentFailedError: 422,
    FailureThresholdExceededError: 422,
    ConfigError: 422,
    ActorflowError: 503,
}


class RequestError(Exception):
    """A request the API refuses before dispatching: `status`, error `type`, message, and
    extra response `headers` (None: the usual ones for the status, e.g. Retry-After on 503)."""

    def __init__(self, status: int, type_: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.headers = headers


def status_of(err: BaseException) -> int:
    """The HTTP status for `err`: its most specific class in the table, else 500."""
    for cls in type(err).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return 500


def status_by_name(type_name: str) -> int:
    """The HTTP status for an error known only by its class name (a streamed result's `error`)."""
    for cls, status in _STATUS.items():
        if cls.__name__ == type_name:
            return status
    return 500


def error_body(
    type_: str,
    message: str,
    *,
    agent: str | None = None,
    details: list[dict[str, Any]] | None = None,
    result: DispatchResult | None = None,
) -> dict[str, Any]:
    """The `ErrorResponse` JSON: `{"error": {...}, "result": DispatchResult | null}`."""
    error: dict[str, Any] = {"type": type_, "message": message}
    if agent is not None:
        error["agent"] = agent
    if details is not None:
        error["details"] = details
    return {"error": error, "result": result.to_dict() if result is not None else None}
