"""`actorflow serve`: deploy the application on embedded Ray (or RAY_ADDRESS) until a signal."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import ray
from ray import serve

from actorflow.config import AgentFlowConfig
from actorflow.exceptions import ActorflowError
from actorflow.runtime.runner import _worker_pythonpath
from actorflow.serve.app import application

__all__ = ["serving", "wait_for_shutdown_signal"]


@contextmanager
def serving(config: AgentFlowConfig, *, host: str | None = None, port: int | None = None) -> Iterator[str]:
    """Deploy `config` as a Serve application and yield its URL; on exit, drain and remove it.

    Leaving the block deletes the application, which drains the HTTP requests in flight (up
    to the orchestration deadline) and stops each replica's runner. An embedded Ray started
    here is shut down too; a joined cluster keeps running, with Serve's proxy.
    """
    host = host or config.serve.host
    port = port or config.serve.port
    name = config.agent_flow.name
    owns_ray = _connect(config)
    try:
        # Serve reports both failures as RuntimeError (a RayTaskError from its proxy or controller).
        try:
            serve.start(http_options={"host": host, "port": port})
        except RuntimeError as err:
            raise ActorflowError(f"Ray Serve cannot listen on {host}:{port}: {_last_line(err)}") from err
        try:
            serve.run(application(config), name=name, route_prefix=config.serve.route_prefix)
        except RuntimeError as err:
            raise ActorflowError(f"the Serve application {name!r} failed to deploy: {_last_line(err)}") from err
        yield f"http://{host}:{port}{config.serve.route_prefix.rstrip('/')}"
    finally:
        try:
            serve.delete(name)
        finally:
            if owns_ray:
                serve.shutdown()
                ray.shutdown()


def _last_line(err: BaseException) -> str:
    """The gist of an error whose text may carry a remote traceback."""
    lines = [line for line in str(err).splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(err).__name__


def _connect(config: AgentFlowConfig) -> bool:
    """Join Ray as the Runner would: the running instance, the configured address or a new one.

    Returns True when this call started Ray (and so must shut it down).
    """
    if ray.is_initialized():
        return False
    runtime = config.runtime
    address = runtime.address or os.environ.get("RAY_ADDRESS", "")
    if address:
        ray.init(address=address, namespace=runtime.namespace)
        return False
    ray.init(
        num_cpus=runtime.num_cpus or os.cpu_count() or 1,
        include_dashboard=False,
        namespace=runtime.namespace,
        _temp_dir=f"/tmp/af-{os.getpid()}",
        runtime_env={"env_vars": {"PYTHONPATH": _worker_pythonpath()}},
    )
    return True


def wait_for_shutdown_signal() -> str:
    """Block until SIGINT or SIGTERM arrives; return its name. A second one is not caught."""
    received: list[str] = []
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
    return received[0]
