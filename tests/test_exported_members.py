"""The public API named in DESIGN.md, pinned."""

import subprocess
import sys

import pytest

import actorflow

pytestmark = pytest.mark.timeout(60)

PUBLIC = {
    "Runner", "Event", "State", "AgentResult", "Agent", "Hook", "CallbackArgs", "DispatchResult", "AgentRun",
    "DispatchUpdate", "load_config", "AgentFlowConfig", "ActorflowError", "ConfigError", "AgentNotFoundError", "DispatchError",
    "AgentFailedError", "DispatchTimeoutError", "FailureThresholdExceededError", "CircuitOpenError",
    "MailboxFullError", "MergeConflictError", "JournalError", "DispatchNotFoundError", "DispatchNotResumableError",
    "Interrupt",
}


def test_all_is_the_public_api():
    assert set(actorflow.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(actorflow, name) is not None


def test_error_tree():
    assert issubclass(actorflow.ConfigError, actorflow.ActorflowError)
    for name in ("AgentFailedError", "DispatchTimeoutError", "FailureThresholdExceededError", "MergeConflictError"):
        assert issubclass(getattr(actorflow, name), actorflow.DispatchError)
    assert issubclass(actorflow.CircuitOpenError, actorflow.AgentFailedError)
    assert issubclass(actorflow.MailboxFullError, actorflow.AgentFailedError)


def test_importing_actorflow_and_its_config_does_not_import_ray():
    code = "import sys, actorflow, actorflow.config, actorflow.events; assert 'ray' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=50)
