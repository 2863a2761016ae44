"""Joining or starting Ray: the one place that calls `ray.init` for actorflow.

    existing   Ray is already initialized in this process (a test, a Ray job, a Serve replica)
    joined     `[runtime] address` or RAY_ADDRESS names a cluster: join it, in bounded time
    started    neither: start a private local instance (dashboard off, private temp dir)

Failing to join a cluster is a set-up error (`ConfigError`, exit 2 in the CLI) whose message
names the address and the likely cause. Ray itself retries for 20 s to 2 min and logs every
attempt, so the address is checked first: a TCP connect (nothing listening: wrong port, head
down), then one GCS call (missing or wrong auth token), both with a deadline. While Ray
joins, `RAY_gcs_server_port_wait_time_s` bounds its own retry loop too.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import ray

from actorflow.config import RuntimeConfig
from actorflow.exceptions import ConfigError

__all__ = ["Connection", "connect", "private_temp_dir", "worker_pythonpath", "JOIN_TIMEOUT_SECONDS"]

Connection = Literal["existing", "joined", "started"]

JOIN_TIMEOUT_SECONDS = 5.0
"""How long each check of a cluster address may take (TCP connect, then the GCS handshake)."""


def private_temp_dir() -> str:
    """Ray's temp dir for an instance this process starts: short (Unix socket paths are
    limited to ~107 bytes) and private, so concurrent runs on one machine never share one."""
    return f"/tmp/af-{os.getpid()}"


def connect(runtime: RuntimeConfig, *, log_to_driver: bool = True) -> Connection:
    """Use the Ray of this process, join the configured cluster, or start a local instance."""
    if ray.is_initialized():
        return "existing"
    address = runtime.address or os.environ.get("RAY_ADDRESS", "")
    if address:
        check_cluster(address)
        with _bounded_ray_retries():
            try:
                ray.init(address=address, namespace=runtime.namespace, log_to_driver=log_to_driver)
            except (ConnectionError, RuntimeError) as err:
                raise ConfigError(_paragraph(address, f"Ray could not join it ({_first_line(err)})", _HINT_ANY)) from err
        return "joined"
    ray.init(
        num_cpus=runtime.num_cpus or os.cpu_count() or 1,
        include_dashboard=False,
        namespace=runtime.namespace,
        log_to_driver=log_to_driver,
        _temp_dir=private_temp_dir(),
        runtime_env={"env_vars": {"PYTHONPATH": worker_pythonpath()}},
    )
    return "started"


_HINT_PORT = (
    "Is the head node running, and is this its GCS port (`ray start --head --port`, 6379 unless "
    "RAY_PORT is set for deployments/ray-head.sh)? The dashboard port (8265) is for `ray job submit`, "
    "not for joining."
)
_HINT_AUTH = (
    "The cluster uses token authentication: set RAY_AUTH_MODE=token and give this process the "
    "cluster's token (RAY_AUTH_TOKEN, or the file ~/.ray/auth_token copied from the head)."
)
_HINT_ANY = f"{_HINT_PORT} {_HINT_AUTH}"


def check_cluster(address: str) -> None:
    """Raise ConfigError, within ~2 × JOIN_TIMEOUT_SECONDS, if `address` is not a reachable GCS.

    Only `HOST:PORT` addresses are checked; "auto", `ray://` (Ray Client) and others are left
    to Ray.
    """
    host, sep, port = address.rpartition(":")
    if not sep or "://" in address or not port.isdigit() or not host:
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=JOIN_TIMEOUT_SECONDS):
            pass
    except OSError as err:
        reason = "nothing accepts connections there" if isinstance(err, ConnectionRefusedError) else str(err)
        raise ConfigError(_paragraph(address, f"cannot connect: {reason}", _HINT_PORT)) from None
    failure = _gcs_handshake(address)
    if failure is not None:
        is_auth = "auth" in failure.lower() or "token" in failure.lower()
        raise ConfigError(_paragraph(address, failure, _HINT_AUTH if is_auth else _HINT_ANY))


def _gcs_handshake(address: str) -> str | None:
    """One call to the cluster's GCS, in a daemon thread so a port that is not a GCS (it never
    answers the handshake) cannot hold us past the deadline. None when the GCS answered."""
    try:
        from ray._raylet import GcsClient  # private: if it moves, the TCP check is all we do
    except ImportError:
        return None
    outcome: list[str | None] = []

    def call() -> None:
        try:
            GcsClient(address=address, cluster_id=None)
            outcome.append(None)
        except Exception as err:  # AuthenticationError, RpcError, ...
            outcome.append(f"{type(err).__name__}: {_first_line(err)}")

    thread = threading.Thread(target=call, name="actorflow-gcs-check", daemon=True)
    with _native_log_filtered():
        thread.start()
        thread.join(JOIN_TIMEOUT_SECONDS)
    if not outcome:
        return f"no Ray GCS answered within {JOIN_TIMEOUT_SECONDS:.0f} s (something else listens on that port?)"
    return outcome[0]


@contextlib.contextmanager
def _native_log_filtered() -> Iterator[None]:
    """Ray's C++ GCS client logs every failed handshake straight to file descriptor 2; the
    ConfigError says it better. Hold fd 2's output for the check, and pass on the other lines."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with tempfile.TemporaryFile() as held:
        sys.stderr.flush()
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            for line in held.read().decode(errors="replace").splitlines(keepends=True):
                if "gcs_client.cc" not in line and "rpc_client.h" not in line:
                    sys.stderr.write(line)


@contextlib.contextmanager
def _bounded_ray_retries() -> Iterator[None]:
    """Ray retries joining once a second, 20 times by default: a few tries are enough here."""
    knob = "RAY_gcs_server_port_wait_time_s"
    previous = os.environ.get(knob)
    if previous is None:
        os.environ[knob] = str(int(JOIN_TIMEOUT_SECONDS))
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(knob, None)


def _paragraph(address: str, what: str, hint: str) -> str:
    return f"cannot join the Ray cluster at {address} ([runtime] address or RAY_ADDRESS): {what}. {hint}"


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = lines[0] if lines else type(err).__name__
    return text.split(". Note:")[0].split(". Ensure")[0].rstrip(".")


def worker_pythonpath() -> str:
    """The driver's import roots, so agent actors can import the modules handlers live in."""
    installed = (sys.prefix, sys.base_prefix)
    roots = [os.getcwd(), *(p for p in sys.path if p and Path(p).is_dir() and not p.startswith(installed))]
    existing = os.environ.get("PYTHONPATH", "")
    return os.pathsep.join(dict.fromkeys([*roots, *filter(None, existing.split(os.pathsep))]))
