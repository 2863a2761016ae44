"""Deploying as users deploy: `deployments/ray-head.sh` starts a token-auth head (private ports,
a private temp dir), `serve deploy deployments/serve.yaml` puts the HTTP API on it, and a
client without the token is refused with exit 2. The KubeRay manifest is checked against Ray
Serve's own config schema.
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
import urllib.request

import pytest
import yaml

from actorflow.runtime.connect import private_temp_dir
from conftest import REPO, TESTS

pytestmark = pytest.mark.timeout(180)

DEPLOYMENTS = REPO / "deployments"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def can_connect(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def wait_until_ok(request: urllib.request.Request, proc: subprocess.Popen, what: str, limit: float = 90) -> bytes:
    """Poll a server that is starting (there is no event to wait on) until it answers 200."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"{what}: the head exited"
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.read()
        except OSError:  # refused, 404/503 while the app deploys, or a read timeout
            time.sleep(0.5)
    pytest.fail(f"{what} did not answer within {limit:.0f} s")


class Head:
    def __init__(self, tmp_path) -> None:
        names = ("gcs", "dashboard", "client", "agent", "agent_grpc", "metrics", "runtime_env", "node_manager", "object_manager")
        self.ports = {name: free_port() for name in names}
        self.temp = f"{private_temp_dir()}-head"
        self.token = secrets.token_hex(16)
        os.makedirs(self.temp, exist_ok=True)
        self.env = {
            **os.environ,
            "RAY_TMPDIR": self.temp,
            "RAY_AUTH_TOKEN": self.token,
            "RAY_PORT": str(self.ports["gcs"]),
            "RAY_DASHBOARD_PORT": str(self.ports["dashboard"]),
            "RAY_CLIENT_SERVER_PORT": str(self.ports["client"]),
            # the head's workers import this checkout of actorflow and the test handlers
            "PYTHONPATH": os.pathsep.join([str(TESTS), str(REPO)]),
        }
        self.env.pop("RAY_ADDRESS", None)
        self.env.pop("RAY_DASHBOARD_HOST", None)
        p = self.ports
        self.proc = subprocess.Popen(
            ["bash", str(DEPLOYMENTS / "ray-head.sh"), "--block", "--num-cpus=2", f"--temp-dir={self.temp}",
             "--include-dashboard=true", f"--dashboard-agent-listen-port={p['agent']}",
             f"--dashboard-agent-grpc-port={p['agent_grpc']}", f"--metrics-export-port={p['metrics']}",
             f"--runtime-env-agent-port={p['runtime_env']}", f"--node-manager-port={p['node_manager']}",
             f"--object-manager-port={p['object_manager']}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=self.env, cwd=tmp_path,
        )
        self.dashboard = f"http://127.0.0.1:{p['dashboard']}"
        request = urllib.request.Request(f"{self.dashboard}/api/version", headers={"Authorization": f"Bearer {self.token}"})
        wait_until_ok(request, self.proc, "the Ray dashboard")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)  # `ray start --block` stops every process it started
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.temp, ignore_errors=True)


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    head = Head(tmp_path_factory.mktemp("head"))
    yield head
    head.stop()


# -- 5. ray-head.sh: loopback dashboard, ports from the environment ----------------------------


def test_head_script_keeps_the_dashboard_on_loopback_and_takes_ports_from_env(head):
    import ray

    assert can_connect("127.0.0.1", head.ports["gcs"])  # RAY_PORT, not 6379
    assert can_connect("127.0.0.1", head.ports["dashboard"])  # RAY_DASHBOARD_PORT
    node_ip = ray.util.get_node_ip_address()
    if node_ip.startswith("127."):
        pytest.skip("this machine has no non-loopback address to probe")
    assert not can_connect(node_ip, head.ports["dashboard"]), "the dashboard (job API) listens beyond loopback"


# -- 4. joining a token-auth cluster without the token ------------------------------------------


def test_joining_without_the_token_is_exit_2_naming_the_token(head, tmp_path):
    env = {k: v for k, v in head.env.items() if k not in ("RAY_AUTH_TOKEN", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH")}
    env["HOME"] = str(tmp_path)  # no ~/.ray/auth_token either
    address = f"127.0.0.1:{head.ports['gcs']}"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "actorflow", "run", str(REPO / "configs" / "route.toml"), "--address", address],
        capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr[-3000:]
    assert time.monotonic() - started < 60  # Ray alone retries for 20 s to minutes; ~2 s on a quiet machine
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"cannot join the Ray cluster at {address}" in lines[0] and "RAY_AUTH_MODE=token" in lines[0]


# -- 9. deployments/serve.yaml through `serve deploy`; the KubeRay manifest ----------------------


@pytest.mark.parametrize("command", ["deploy", "run"])
def test_serve_deploy_and_run_accept_the_shipped_config(head, tmp_path, command):
    config = yaml.safe_load((DEPLOYMENTS / "serve.yaml").read_text())
    port = free_port()
    config["http_options"]["port"] = port  # 8000 may be taken on a shared machine
    app = config["applications"][0]
    app["args"]["config"] = str(REPO / app["args"]["config"])  # resolved on the cluster, not here
    path = tmp_path / "serve.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {**head.env, "RAY_AUTH_MODE": "token"}

    args = {
        "deploy": ["deploy", str(path), "-a", head.dashboard],  # through the dashboard's REST API
        "run": ["run", "--non-blocking", str(path), "-a", f"127.0.0.1:{head.ports['gcs']}"],  # a driver
    }[command]
    deploy = subprocess.run(
        [sys.executable, "-m", "ray.serve.scripts", *args],
        capture_output=True, text=True, timeout=90, env=env, cwd=tmp_path,
    )
    assert deploy.returncode == 0, deploy.stdout[-2000:] + deploy.stderr[-2000:]
    try:
        body = json.dumps({"target": "collector", "data": {"output_dir": str(tmp_path)}}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/dispatch", data=body, method="POST")
        result = json.loads(wait_until_ok(request, head.proc, "the deployed application", limit=120))
        assert result["ok"] is True and [run["agent"] for run in result["runs"]] == [
            "collector", "processor", "validator", "publisher"
        ]
    finally:
        subprocess.run(
            [sys.executable, "-m", "ray.serve.scripts", "shutdown", "-a", head.dashboard, "-y"],
            capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path,
        )


def test_serve_config_and_kuberay_manifest_match_serve_schema():
    from ray.serve.schema import ServeDeploySchema

    local = ServeDeploySchema.model_validate(yaml.safe_load((DEPLOYMENTS / "serve.yaml").read_text()))
    manifest = yaml.safe_load((DEPLOYMENTS / "kuberay" / "rayservice.yaml").read_text())
    assert (manifest["apiVersion"], manifest["kind"]) == ("ray.io/v1", "RayService")
    kube = ServeDeploySchema.model_validate(yaml.safe_load(manifest["spec"]["serveConfigV2"]))
    assert [a.import_path for a in kube.applications] == [a.import_path for a in local.applications]
    assert kube.applications[0].import_path == "actorflow.serve.app:build_app"
    from actorflow.serve import ServeArgs

    args = ServeArgs.model_validate(kube.applications[0].args)  # what build_app will accept
    ServeArgs.model_validate(local.applications[0].args)
    cluster = manifest["spec"]["rayClusterConfig"]
    assert cluster["authOptions"]["mode"] == "token"
    pods = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    for pod in pods:  # a replica may land in any pod: each has the API key's variable
        (container,) = pod["template"]["spec"]["containers"]
        assert args.api_key_env in [env["name"] for env in container.get("env", [])]
    assert cluster["rayVersion"] == __import__("ray").__version__
