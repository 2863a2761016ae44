"""actorflow: actor-model multi-agent orchestration on Ray.

Re-exports the public API. `Runner` is imported lazily so that `import actorflow` (and
`actorflow.config`) work without importing Ray.
"""

from typing import TYPE_CHECKING, Any

from actorflow.agent import Agent
from actorflow.config import AgentFlowConfig, load_config
from actorflow.events import AgentResult, AgentRun, DispatchResult, Event, State
from actorflow.exceptions import (
    ActorflowError,
    AgentFailedError,
    AgentNotFoundError,
    CircuitOpenError,
    ConfigError,
    DispatchError,
    DispatchNotFoundError,
    DispatchNotResumableError,
    DispatchTimeoutError,
    FailureThresholdExceededError,
    JournalError,
    MailboxFullError,
    MergeConflictError,
)
from actorflow.hooks import CallbackArgs, Hook
from actorflow.interrupts import Interrupt
from actorflow.updates import DispatchUpdate

if TYPE_CHECKING:
    from actorflow.runtime.runner import Runner

__version__ = "0.1.0"

__all__ = [
    "Runner",
    "Event",
    "State",
    "AgentResult",
    "Agent",
    "Hook",
    "CallbackArgs",
    "DispatchResult",
    "AgentRun",
    "DispatchUpdate",
    "Interrupt",
    "load_config",
    "AgentFlowConfig",
    "ActorflowError",
    "ConfigError",
    "AgentNotFoundError",
    "DispatchError",
    "AgentFailedError",
    "DispatchTimeoutError",
    "FailureThresholdExceededError",
    "CircuitOpenError",
    "MailboxFullError",
    "MergeConflictError",
    "JournalError",
    "DispatchNotFoundError",
    "DispatchNotResumableError",
]


def __getattr__(name: str) -> Any:
    if name == "Runner":
        from actorflow.runtime.runner import Runner

        return Runner
    raise AttributeError(f"module 'actorflow' has no attribute {name!r}")
