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


@pytest.fixture(scope="session")
def postgres_admin_url():
    """A private PostgreSQL server for the session (tests/pg.py); its admin database's URL.

    Skips when the PostgreSQL binaries are absent, except under ACTORFLOW_REQUIRE_POSTGRES=1
    (CI), where that fails instead.
    """
    import pg

    if pg.find_bin_dir() is None:
        reason = "PostgreSQL binaries (initdb, pg_ctl) not found on PATH or in /usr/lib/postgresql/*/bin"
        if os.environ.get("ACTORFLOW_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{reason}, and ACTORFLOW_REQUIRE_POSTGRES=1 forbids skipping")
        pytest.skip(reason)
    with pg.postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def postgres_url(postgres_admin_url):
    """The URL of a database on the session's private PostgreSQL server, shared by the session."""
    import pg

    return pg.create_database(postgres_admin_url, "actorflow")


@pytest.fixture
def new_postgres_database(postgres_admin_url):
    """Make new, empty databases on the session's server: `new_postgres_database()` -> URL."""
    import pg

    return lambda: pg.create_database(postgres_admin_url)


@pytest.fixture(params=["sqlite", "postgresql"])
def journal_url(request, tmp_path):
    """The URL of a new, empty journal database of each kind (SQLite in tmp_path, PostgreSQL on
    the session's private server)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'journal.db'}"
    return request.getfixturevalue("new_postgres_database")()
