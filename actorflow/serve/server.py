"""`actorflow serve`: deploy the application on embedded Ray (or RAY_ADDRESS) until a signal."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import ray
from ray import serve
from ray.exceptions import GetTimeoutError, RayError

from actorflow.config import AgentFlowConfig
from actorflow.exceptions import ActorflowError
from actorflow.runtime.connect import connect
from actorflow.serve.app import application
from actorflow.serve.drain import DrainSwitch
from actorflow.serve.guard import GuardSettings

__all__ = ["serving", "wait_for_shutdown_signal"]

logger = logging.getLogger(__name__)

# Time beyond the orchestration deadline that draining may take before the server gives up.
_DRAIN_GRACE_SECONDS = 15.0


@contextmanager
def serving(
    config: AgentFlowConfig, *, host: str | None = None, port: int | None = None, flows: list[AgentFlowConfig] | None = None
) -> Iterator[str]:
    """Deploy `config` as a Serve application and yield its URL; on exit, drain and remove it.

    Leaving the block normally drains first: every replica answers new requests with 503 JSON
    (and `/v1/health` with 503) while it finishes the dispatches in flight (up to the
    orchestration deadline), then stops its runner. Only then is the application removed, so
    its route never answers 404 while the server drains. An embedded Ray started here is shut
    down with its proxy; a joined cluster keeps running, with Serve's proxy.
    """
    host = host or config.serve.host
    port = port or config.serve.port
    name = config.agent_flow.name
    GuardSettings.from_config(config.serve)  # a missing API key is a set-up error, before Ray starts
    connection = connect(config.runtime)
    switch = None
    drained = False
    try:
        switch = DrainSwitch.remote()
        # Serve reports both failures as RuntimeError (a RayTaskError from its proxy or controller).
        try:
            serve.start(http_options={"host": host, "port": port})
        except RuntimeError as err:
            raise ActorflowError(f"Ray Serve cannot listen on {host}:{port}: {_last_line(err)}") from err
        try:
            serve.run(application(config, drain=switch, flows=flows), name=name, route_prefix=config.serve.route_prefix)
        except RuntimeError as err:
            raise ActorflowError(f"the Serve application {name!r} failed to deploy: {_last_line(err)}") from err
        yield f"http://{host}:{port}{config.serve.route_prefix.rstrip('/')}"
        drained = _drain(switch, config.orchestration.timeout_seconds + _DRAIN_GRACE_SECONDS)
    finally:
        try:
            # A drained local instance is shut down whole: its replicas answer 503 until the
            # proxy goes down with it, leaving no moment where the route is gone but the proxy up.
            if not (connection == "started" and drained):
                serve.delete(name)
        finally:
            if switch is not None:
                ray.kill(switch)
            if connection == "started":
                if not drained:
                    serve.shutdown()
                ray.shutdown()
                _forget_serve_client()


def _forget_serve_client() -> None:
    """Serve keeps a client to the (now gone) controller in this process: drop it, so a later
    `serving()` here starts afresh. (`serve.shutdown()` would, but removes the route first.)"""
    try:
        from ray.serve.context import _set_global_client

        _set_global_client(None)
    except ImportError:
        pass


def _drain(switch: object, limit: float) -> bool:
    """Tell every replica to drain and wait (at most `limit` s) until all have. True if all did."""
    try:
        replicas = ray.get(switch.start.remote(), timeout=10)
        logger.info("draining %d replica(s)", replicas)
        ray.get(switch.all_done.remote(), timeout=limit)
        return True
    except (GetTimeoutError, RayError) as err:
        logger.warning("draining did not finish within %.0f s (%s); stopping anyway", limit, type(err).__name__)
        return False


def _last_line(err: BaseException) -> str:
    """The gist of an error whose text may carry a remote traceback."""
    lines = [line for line in str(err).splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(err).__name__


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
