"""The actorflow error tree.

    ActorflowError                      root of everything actorflow raises
    ├── ConfigError                     set-up: a bad agentflow.toml, a bad override (also a ValueError)
    ├── AgentNotFoundError              no such agent, or an agent with no handler
    ├── JournalError                    the journal cannot be opened, is corrupt or is newer than this code
    ├── DispatchNotFoundError           no dispatch with that event id is known (HTTP 404)
    ├── DispatchNotResumableError       the dispatch exists but is not interrupted (HTTP 409)
    └── DispatchError                   run-time: a dispatch did not succeed; `.result` holds what finished
        ├── AgentFailedError            an agent run failed for good (`.agent`, `.cause`)
        │   ├── CircuitOpenError        the agent's circuit breaker is open: failed fast, not called
        │   └── MailboxFullError        the agent's mailbox (`mailbox_size`) is full
        ├── DispatchTimeoutError        the orchestration deadline (`timeout_seconds`) expired
        └── FailureThresholdExceededError  too many collaborative agents failed

Every error can carry the partial `DispatchResult` as `err.result` (None where no dispatch ran).
The errors pickle with their attributes, so they cross Ray actor boundaries intact.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from actorflow.events import DispatchResult

__all__ = [
    "ActorflowError",
    "ConfigError",
    "AgentNotFoundError",
    "DispatchError",
    "AgentFailedError",
    "CircuitOpenError",
    "MailboxFullError",
    "DispatchTimeoutError",
    "FailureThresholdExceededError",
    "MergeConflictError",
    "JournalError",
    "DispatchNotFoundError",
    "DispatchNotResumableError",
]


def _rebuild(cls: type, message: str, attrs: dict[str, Any]) -> ActorflowError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(attrs)
    return err


class ActorflowError(Exception):
    """Root of every error actorflow raises."""

    result: DispatchResult | None = None

    def __init__(self, message: str, *, result: DispatchResult | None = None) -> None:
        super().__init__(message)
        self.result = result

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __reduce__(self):
        return (_rebuild, (type(self), self.message, dict(self.__dict__)))


class ConfigError(ActorflowError, ValueError):
    """A set-up mistake: the configuration (file, environment layer or overrides) is invalid."""

    def __init__(self, message: str, *, path: str | None = None, key: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.key = key


class AgentNotFoundError(ActorflowError, LookupError):
    """An event or orchestration list names an agent that is not registered or has no handler."""

    def __init__(
        self,
        message: str,
        *,
        agent: str | None = None,
        known: list[str] | None = None,
        result: DispatchResult | None = None,
    ) -> None:
        super().__init__(message, result=result)
        self.agent = agent
        self.known = list(known or [])


class JournalError(ActorflowError):
    """The dispatch journal cannot be used: unreachable, not a journal, corrupt, or written by a
    newer actorflow (a journal is refused, never overwritten)."""

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class DispatchNotFoundError(ActorflowError, LookupError):
    """No dispatch with this event id is known (to the journal, or to this runner's memory)."""

    def __init__(self, message: str, *, event_id: str | None = None) -> None:
        super().__init__(message)
        self.event_id = event_id


class DispatchNotResumableError(ActorflowError):
    """The dispatch exists but cannot be resumed: it finished, or it is still running."""

    def __init__(self, message: str, *, event_id: str | None = None, status: str | None = None) -> None:
        super().__init__(message)
        self.event_id = event_id
        self.status = status


class DispatchError(ActorflowError):
    """A dispatch ran but did not succeed; `result` is the partial DispatchResult."""


class AgentFailedError(DispatchError):
    """An agent run failed and was not recovered (after retries and AGENT_ERROR callbacks)."""

    def __init__(
        self,
        message: str,
        *,
        agent: str | None = None,
        cause: str | None = None,
        result: DispatchResult | None = None,
    ) -> None:
        super().__init__(message, result=result)
        self.agent = agent
        self.cause = cause


class CircuitOpenError(AgentFailedError):
    """The agent's circuit breaker is open: the call failed fast without reaching the agent."""


class MailboxFullError(AgentFailedError):
    """The agent's mailbox holds `mailbox_size` pending calls already."""


class DispatchTimeoutError(DispatchError, TimeoutError):
    """The orchestration deadline expired; outstanding agent calls were cancelled."""


class FailureThresholdExceededError(DispatchError):
    """More collaborative agents failed than `failure_threshold` tolerates."""


class MergeConflictError(DispatchError):
    """Collaborative agents changed a key whose reducer is `error` (or a reducer could not combine
    the values written); `key` and `agents` say which."""

    def __init__(
        self, message: str, *, key: str | None = None, agents: list[str] | None = None,
        result: DispatchResult | None = None,
    ) -> None:
        super().__init__(message, result=result)
        self.key = key
        self.agents = list(agents or [])
