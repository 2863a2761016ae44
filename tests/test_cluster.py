"""Multi-node Ray: placement by resources, node loss, and `ray job submit` of `actorflow run`.

Each test runs a Ray cluster of its own in subprocesses (the session's Ray instance cannot
become a multi-node cluster), with a private temp dir, and ends every process it started.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from actorflow.runtime.connect import private_temp_dir
from conftest import REPO, TESTS

pytestmark = pytest.mark.timeout(150)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_agents_follow_their_resources_and_come_back_after_node_loss(tmp_path):
    from cluster_check import CONFIG

    config = tmp_path / "cluster.toml"
    config.write_text(CONFIG)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(REPO)])}
    env.pop("RAY_ADDRESS", None)
    done = subprocess.run(
        [sys.executable, str(TESTS / "cluster_check.py"), str(config)],
        capture_output=True, text=True, timeout=130, env=env, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])

    assert report["placed"] == {"east": "east", "west": "west", "roaming": report["placed"]["roaming"]}
    assert report["placed"]["roaming"] in ("east", "west")
    survivor = {"east": "west", "west": "east"}[report["removed"]]
    assert report["removed"] == report["placed"]["roaming"] and report["roaming_after"] == survivor
    assert report["attempts"][-1][1] == "ok"
    print(f"node-loss recovery: {report['recovery_seconds']} s, attempts {report['attempts']}, "
          f"supervisor lost with the node: {report['supervisor_lost']}")


def test_ray_job_submit_runs_actorflow(tmp_path):
    """`ray start --head` with token auth, then `ray job submit --working-dir . -- actorflow run`."""
    ports = {name: free_port() for name in ("gcs", "dashboard", "client", "agent", "metrics")}
    ray_cli = [sys.executable, "-m", "ray.scripts.scripts"]
    temp = f"{private_temp_dir()}-job"
    env = {**os.environ, "RAY_TMPDIR": temp, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16)}
    env.pop("RAY_ADDRESS", None)
    os.makedirs(temp, exist_ok=True)
    head = subprocess.Popen(
        [*ray_cli, "start", "--head", "--block", "--num-cpus=2", f"--temp-dir={temp}", "--disable-usage-stats",
         f"--port={ports['gcs']}", "--include-dashboard=true", "--dashboard-host=127.0.0.1",
         f"--dashboard-port={ports['dashboard']}", f"--ray-client-server-port={ports['client']}",
         f"--dashboard-agent-listen-port={ports['agent']}", f"--metrics-export-port={ports['metrics']}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
    )
    address = f"http://127.0.0.1:{ports['dashboard']}"
    try:
        _wait_for_dashboard(address, env["RAY_AUTH_TOKEN"], head)
        job = subprocess.run(
            [*ray_cli, "job", "submit", "--address", address, "--working-dir", ".", "--",
             "actorflow", "run", "configs/route.toml", "--json"],
            capture_output=True, text=True, timeout=90, env=env, cwd=REPO,
        )
        assert job.returncode == 0, job.stdout[-3000:] + job.stderr[-3000:]
        result = json.loads(next(line for line in job.stdout.splitlines() if line.startswith('{"ok"')))
        assert result["ok"] is True and result["mode"] == "route"
        assert result["state"]["data"]["query_result"]["question"] == "revenue by region"
        assert "Connecting to existing Ray cluster" in job.stdout + job.stderr  # the job joined the head
    finally:
        head.send_signal(signal.SIGTERM)  # `ray start --block` stops every process it started
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait()
        shutil.rmtree(temp, ignore_errors=True)


def _wait_for_dashboard(address: str, token: str, head: subprocess.Popen) -> None:
    request = urllib.request.Request(f"{address}/api/version", headers={"Authorization": f"Bearer {token}"})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert head.poll() is None, f"ray start --head exited: {head.stderr.read()[-3000:]}"
        try:
            with urllib.request.urlopen(request, timeout=2):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.5)  # polling a server that is starting: there is no event to wait on
    pytest.fail("the Ray dashboard (job server) did not come up within 60 s")
