"""One Ray instance for the whole session: fixed num_cpus, no dashboard, a private temp dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent


@pytest.fixture(scope="session")
def ray_session():
    import ray

    from actorflow.runtime.connect import private_temp_dir

    ray.init(
        num_cpus=4,
        include_dashboard=False,
        namespace="actorflow-tests",
        log_to_driver=False,
        _temp_dir=private_temp_dir(),
        # Agent actors unpickle handlers defined in the test modules: they must import them.
        runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join([str(TESTS), str(REPO)])}},
    )
    yield ray
    ray.shutdown()


@pytest.fixture
def make_runner(ray_session):
    """Build runners that are stopped at the end of the test, whatever happens."""
    from actorflow import AgentFlowConfig, Runner

    runners = []

    def make(config=None, *, agents=None, **overrides):
        runner = Runner(config or AgentFlowConfig(), **overrides)
        for name, handler in (agents or {}).items():
            runner.register_agent(name, handler)
        runners.append(runner)
        return runner

    yield make
    for runner in runners:
        runner.stop(timeout=5)
