"""A private PostgreSQL server for the tests: initdb into a temp dir, pg_ctl on a free port.

The binaries come from PATH or /usr/lib/postgresql/*/bin (Debian's `postgresql` package, which
.ci/run installs). When they are absent the tests that need the server skip, unless
ACTORFLOW_REQUIRE_POSTGRES=1 (set in CI), where they fail instead. PostgreSQL refuses to run
as root, so as root the server runs as `nobody` (via runuser) in a directory it owns.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

USER = "actorflow"
"""The server's superuser (trust authentication: any password is accepted)."""

START_TIMEOUT_S = 60


def find_bin_dir() -> Path | None:
    """The directory holding initdb and pg_ctl, or None."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(os.path.realpath(on_path)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_server_user(argv: list[str]) -> tuple[list[str], str | None]:
    """The command to run as the server's user, and that user's name (None: this user)."""
    if os.geteuid() != 0:
        return argv, None
    return ["runuser", "-u", "nobody", "--", *argv], "nobody"


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a private server; yield its admin URL (database `postgres`); stop it at the end."""
    bin_dir = find_bin_dir()
    assert bin_dir is not None, "no PostgreSQL binaries"
    # A short path: the server's Unix socket lives in it (paths are limited to ~100 bytes).
    root = Path(tempfile.mkdtemp(prefix="af-pg-", dir="/tmp"))
    data = root / "data"
    _, user = _as_server_user([])
    if user:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    port = _free_port()

    def run(argv: list[str]) -> None:
        command, _ = _as_server_user(argv)
        done = subprocess.run(command, capture_output=True, text=True, timeout=START_TIMEOUT_S, cwd=root)
        if done.returncode != 0:
            log = (root / "server.log").read_text() if (root / "server.log").exists() else ""
            raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}{done.stderr}{log}")

    started = False
    try:
        run([str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", USER, "--no-sync", "-E", "UTF8"])
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off -c full_page_writes=off"
        run([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w",
             "-t", str(START_TIMEOUT_S), "-o", options, "start"])
        started = True
        url = f"postgresql://{USER}@127.0.0.1:{port}/postgres"
        _wait_ready(url)
        yield url
    finally:
        if started:
            run([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"])
        shutil.rmtree(root, ignore_errors=True)


def _wait_ready(url: str) -> None:
    import psycopg

    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            psycopg.connect(url, connect_timeout=5).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)  # polling a server that is starting up: there is nothing to wait on


def create_database(admin_url: str, prefix: str = "t") -> str:
    """A new, empty database on the server; returns its URL."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + "/" + name
