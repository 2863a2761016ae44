"""The HTTP API on a real Ray Serve instance (127.0.0.1, a free port) with a real HTTP client.

One Serve instance for the module, on the session's Ray (shut down at module teardown): an
app per pattern, and a route-mode "faults" app whose agents hang, fail and have a one-slot
mailbox. The last test runs `actorflow serve` itself, on an embedded Ray of its own.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from actorflow import load_config

from conftest import REPO

pytestmark = pytest.mark.timeout(120)

# Small pattern apps (each agent is a process: this machine has 2 cores), plus the shipped
# sequential pipeline that the README's curl example serves.
PATTERN_TOML = {
    "collaborative": """
[orchestration]
mode = "collaborative"
collaborative_agents = ["inc", "double"]
[agents.inc]
handler = "agents:returns_dict"
[agents.double]
handler = "agents:async_double"
""",
    "loop": """
[orchestration]
mode = "loop"
loop_agent = "counter"
max_iterations = 10
[agents.counter]
handler = "agents:increments"
""",
    "spread": """
[runtime]
supervisors = 2
[agents.echo]
handler = "agents:returns_dict"
""",
    "mixed": """
[orchestration]
mode = "mixed"
collaborative_agents = ["inc", "double"]
sequential_agents = ["finish"]
[agents.inc]
handler = "agents:returns_dict"
[agents.double]
handler = "agents:async_double"
[agents.finish]
handler = "agents:returns_result"
""",
}

FAULTS_TOML = """
[orchestration]
mode = "route"
timeout_seconds = 2
retry_attempts = 0

[orchestration.circuit_breaker]
failure_threshold = 1
reset_timeout_seconds = 60

[agents.echo]
handler = "agents:returns_dict"

[agents.hang]
handler = "agents:async_sleeps"

[agents.narrow]
handler = "agents:async_sleeps"
mailbox_size = 1

[agents.broken]
handler = "agents:fails"

[serve]
max_body_bytes = 4096
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Client:
    """A keep-alive HTTP/1.1 connection to the test server."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def request(self, method: str, path: str, body: bytes | str | None = None, headers: dict | None = None):
        self.conn.request(method, path, body, headers or {})
        response = self.conn.getresponse()
        raw = response.read()
        is_json = response.getheader("content-type", "").startswith("application/json")
        return response.status, json.loads(raw) if is_json else raw.decode()

    def post(self, path: str, payload) -> tuple[int, dict]:
        return self.request("POST", path, json.dumps(payload), {"Content-Type": "application/json"})

    def close(self) -> None:
        self.conn.close()


@pytest.fixture(scope="module")
def port(ray_session, tmp_path_factory):
    from ray import serve

    from actorflow.serve import application

    configs = tmp_path_factory.mktemp("serve")
    apps = {"faults": FAULTS_TOML, **PATTERN_TOML}
    for name, text in apps.items():
        (configs / f"{name}.toml").write_text(text)
    loaded = {name: load_config(configs / f"{name}.toml") for name in apps}
    loaded["sequential"] = load_config(REPO / "configs" / "sequential.toml")
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    try:
        targets = [serve.RunTarget(application(cfg), name=name, route_prefix=f"/{name}") for name, cfg in loaded.items()]
        # several flows behind one application (test_several_flows_behind_one_server)
        targets.append(serve.RunTarget(application(loaded["mixed"], flows=[loaded["loop"]]), name="multi",
                                       route_prefix="/multi"))
        serve.run_many(targets)
        yield port
    finally:
        serve.shutdown()


@pytest.fixture
def client(port):
    client = Client(port)
    yield client
    client.close()


def post_once(port: int, path: str, payload) -> tuple[int, dict]:
    client = Client(port)
    try:
        return client.post(path, payload)
    finally:
        client.close()


def metric_samples(client: Client, app: str) -> dict[tuple, float]:
    """`/metrics` parsed as Prometheus text: (name, sorted labels) → value."""
    from prometheus_client.parser import text_string_to_metric_families

    status, text = client.request("GET", f"/{app}/metrics")
    assert status == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


# -- the patterns ----------------------------------------------------------------------------


SEQUENTIAL = ["collector", "processor", "validator", "publisher"]


@pytest.mark.parametrize(
    "app, target, data, ran",
    [
        ("faults", "echo", {"x": 1}, ["echo"]),
        ("collaborative", "inc", {"x": 1, "value": 3}, ["inc", "double"]),
        ("sequential", "collector", {}, SEQUENTIAL),
        ("loop", "counter", {"until": 3}, ["counter"] * 3),
        ("mixed", "inc", {"x": 1, "value": 3}, ["inc", "double", "finish"]),
    ],
)
def test_dispatch_each_pattern(client, app, target, data, ran, tmp_path):
    payload = {"target": target, "data": {**data, "output_dir": str(tmp_path)}, "metadata": {"session_id": f"s-{app}"}}

    status, body = client.post(f"/{app}/v1/dispatch", payload)

    assert status == 200, body
    assert body["ok"] is True and body["session_id"] == f"s-{app}" and body["error"] is None
    assert body["mode"] == ("route" if app == "faults" else app)
    assert sorted(run["agent"] for run in body["runs"] if run["status"] == "ok") == sorted(ran)
    out = body["state"]["data"]
    if app == "faults":
        assert out["from_dict"] == 2
    if app in ("collaborative", "mixed"):
        assert (out["from_dict"], out["value"]) == (2, 6)
    if app == "mixed":
        assert [run["phase"] for run in body["runs"]][-1] == "sequential" and out["via_result"] is True
    if app == "sequential":
        assert [run["agent"] for run in body["runs"]] == SEQUENTIAL
        assert Path(out["publish_result"]["path"]).parent == tmp_path
    if app == "loop":
        assert (body["iterations"], body["completion_reason"], out["count"]) == (3, "loop_complete", 3)


def test_dispatch_with_an_orchestration_override(client):
    payload = {"target": "inc", "data": {"x": 1, "value": 3}, "orchestration": {"mode": "collaborative"}}
    status, body = client.post("/mixed/v1/dispatch", payload)
    assert status == 200 and body["mode"] == "collaborative", body
    assert sorted(run["agent"] for run in body["runs"]) == ["double", "inc"]
    for bad, says in [({"mode": "nope"}, "mode"), ({"join": "quorum"}, "quorum"), ({"event": 1}, "event")]:
        status, body = client.post("/mixed/v1/dispatch", {"target": "inc", "orchestration": bad})
        assert status == 422 and body["error"]["type"] == "ConfigError" and says in body["error"]["message"], body


def test_several_flows_behind_one_server(client):
    status, body = client.request("GET", "/multi/v1/flows")
    assert status == 200 and [(f["name"], f["mode"], f["default"]) for f in body["flows"]] == [
        ("mixed", "mixed", True), ("loop", "loop", False)]
    status, body = client.post("/multi/v1/flows/loop/dispatch", {"target": "counter", "data": {"until": 2}})
    assert status == 200 and body["mode"] == "loop" and body["iterations"] == 2, body
    status, body = client.post("/multi/v1/dispatch", {"target": "inc", "data": {"x": 1, "value": 3}})
    assert status == 200 and body["mode"] == "mixed"  # the one-flow path addresses the first flow
    status, body = client.request("GET", "/multi/v1/flows/loop/agents")
    assert status == 200 and [a["name"] for a in body["agents"]] == ["counter"]
    for method, path in [("POST", "/multi/v1/flows/nope/dispatch"), ("GET", "/multi/v1/flows/nope/agents")]:
        status, body = client.request(method, path, json.dumps({"target": "x"}) if method == "POST" else None)
        assert status == 404 and body["error"]["type"] == "FlowNotFound" and "loop" in body["error"]["message"]


def test_a_named_flow_streams_over_sse(client):
    status, text = client.request("POST", "/multi/v1/flows/loop/dispatch/stream",
                                  json.dumps({"target": "counter", "data": {"until": 2}}))
    assert status == 200, text
    kinds = [line.split(": ", 1)[1].strip() for line in text.splitlines() if line.startswith("event:")]
    assert kinds[0] == "dispatch_started" and kinds[-1] == "dispatch_finished" and "agent_finished" in kinds
    last = json.loads([line for line in text.splitlines() if line.startswith("data:")][-1].split(": ", 1)[1])
    assert last["result"]["mode"] == "loop" and last["result"]["iterations"] == 2
    status, body = client.request("POST", "/multi/v1/flows/nope/dispatch/stream", json.dumps({"target": "x"}))
    assert status == 404 and body["error"]["type"] == "FlowNotFound"


def test_agents_health_and_openapi(client):
    status, body = client.request("GET", "/faults/v1/agents")
    assert status == 200
    assert {a["name"]: a["circuit"] for a in body["agents"]} == dict.fromkeys(["echo", "hang", "narrow", "broken"], "closed")

    assert client.request("GET", "/faults/v1/health") == (200, {"status": "ok", "mode": "route", "agents": 4})

    status, doc = client.request("GET", "/faults/openapi.json")
    assert status == 200
    dispatch = doc["paths"]["/v1/dispatch"]["post"]
    schema = dispatch["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["target"] and schema["additionalProperties"] is False
    assert {"200", "400", "404", "413", "422", "429", "503", "504"} <= set(dispatch["responses"])
    assert {"/v1/agents", "/v1/health", "/metrics"} <= set(doc["paths"])


# -- bad input: always 4xx, with a readable error ----------------------------------------------


@pytest.mark.parametrize(
    "body, status, error_type, says",
    [
        (b'{"target": "echo", ', 400, "MalformedBody", "not valid JSON"),
        (b"\xff\xfe\x00", 400, "MalformedBody", "not valid JSON"),
        (b"", 400, "MalformedBody", "empty"),
        (b"[1, 2]", 422, "ValidationError", "body: Input should be an object"),
        (b'{"data": {}}', 422, "ValidationError", "target: Field required"),
        (b'{"target": 7}', 422, "ValidationError", "target: Input should be a valid string"),
        (b'{"target": ""}', 422, "ValidationError", "target: String should have at least 1 character"),
        (b'{"target": "echo", "data": [1]}', 422, "ValidationError", "data: Input should be an object"),
        (b'{"target": "echo", "metadata": {"k": 1}}', 422, "ValidationError", "metadata.k: Input should be a valid string"),
        (b'{"target": "echo", "extra": 1}', 422, "ValidationError", "extra: Extra inputs are not permitted"),
    ],
)
def test_bad_bodies_are_4xx(client, body, status, error_type, says):
    got, answer = client.request("POST", "/faults/v1/dispatch", body, {"Content-Type": "application/json"})
    assert got == status, answer
    assert answer["error"]["type"] == error_type and says in answer["error"]["message"]
    assert answer["result"] is None


def test_oversized_body_is_413(port):
    big = json.dumps({"target": "echo", "data": {"blob": "x" * 8192}}).encode()
    client = Client(port)
    try:
        status, answer = client.request("POST", "/faults/v1/dispatch", big)  # Content-Length declared
        assert (status, answer["error"]["type"]) == (413, "BodyTooLarge")
    finally:
        client.close()
    chunked = Client(port)  # no Content-Length: counted while streaming
    try:
        chunked.conn.request("POST", "/faults/v1/dispatch", iter([big[:4000], big[4000:]]), encode_chunked=True)
        response = chunked.conn.getresponse()
        assert (response.status, json.loads(response.read())["error"]["type"]) == (413, "BodyTooLarge")
    finally:
        chunked.close()


def test_curl_style_form_content_type_is_read_as_json(client):
    body = json.dumps({"target": "echo", "data": {"x": 41}})
    status, answer = client.request("POST", "/faults/v1/dispatch", body, {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200 and answer["state"]["data"]["from_dict"] == 42


def test_unknown_path_and_method_are_4xx_json(client):
    assert client.request("GET", "/faults/v1/nothing")[0] == 404
    status, answer = client.request("GET", "/faults/v1/dispatch")
    assert (status, answer["error"]["type"]) == (405, "HTTPError")


# -- runtime errors: mapped statuses, partial result attached ----------------------------------


def test_unknown_agent_is_404(client):
    status, answer = client.post("/faults/v1/dispatch", {"target": "ghost"})
    assert status == 404
    assert answer["error"]["type"] == "AgentNotFoundError" and answer["error"]["agent"] == "ghost"
    assert "registered agents" in answer["error"]["message"] and answer["result"]["ok"] is False


def test_hung_agent_past_the_deadline_is_504(client):
    started = time.monotonic()
    status, answer = client.post("/faults/v1/dispatch", {"target": "hang", "data": {"sleep": 30}})
    assert status == 504 and time.monotonic() - started < 10
    assert answer["error"]["type"] == "DispatchTimeoutError"
    assert [run["status"] for run in answer["result"]["runs"]] == ["cancelled"]


def test_failed_agent_is_422_then_open_breaker_is_503(client):
    status, answer = client.post("/faults/v1/dispatch", {"target": "broken"})
    assert (status, answer["error"]["type"], answer["error"]["agent"]) == (422, "AgentFailedError", "broken")
    assert answer["result"]["runs"][0]["error"] == "ValueError: bad input for this agent"

    status, answer = client.post("/faults/v1/dispatch", {"target": "broken"})
    assert (status, answer["error"]["type"]) == (503, "CircuitOpenError")
    assert answer["result"]["runs"][0]["status"] == "circuit_open"
    agents = {a["name"]: a["circuit"] for a in client.request("GET", "/faults/v1/agents")[1]["agents"]}
    assert agents["broken"] == "open" and agents["echo"] == "closed"


def test_full_mailbox_is_429(port):
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        first = pool.submit(post_once, port, "/faults/v1/dispatch", {"target": "narrow", "data": {"sleep": 1.0}})
        watcher = Client(port)
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # the first call holds the only mailbox slot
                agents = watcher.request("GET", "/faults/v1/agents")[1]["agents"]
                if next(a for a in agents if a["name"] == "narrow")["in_flight"]:
                    break
            status, answer = watcher.post("/faults/v1/dispatch", {"target": "narrow", "data": {"sleep": 0}})
        finally:
            watcher.close()
        assert (status, answer["error"]["type"]) == (429, "MailboxFullError")
        assert "mailbox" in answer["error"]["message"]
        assert first.result(timeout=10)[0] == 200


# -- load and metrics ------------------------------------------------------------------------


def test_concurrent_load_has_no_errors_and_metrics_count_it(port, client):
    clients, per_client = 16, 50
    before = metric_samples(client, "faults")

    def worker(index: int) -> list[int]:
        own = Client(port)
        try:
            return [
                own.post("/faults/v1/dispatch", {"target": "echo", "data": {"x": index * 1000 + i}})[0]
                for i in range(per_client)
            ]
        finally:
            own.close()

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        statuses = [s for batch in pool.map(worker, range(clients)) for s in batch]
    assert statuses == [200] * (clients * per_client)

    bad = [client.post("/faults/v1/dispatch", {"target": 1})[0] for _ in range(3)]
    missing = [client.post("/faults/v1/dispatch", {"target": "ghost"})[0] for _ in range(2)]
    assert (bad, missing) == ([422] * 3, [404] * 2)

    after = metric_samples(client, "faults")

    def delta(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    sent = clients * per_client
    assert delta("actorflow_dispatches_total", mode="route", outcome="ok") == sent
    assert delta("actorflow_dispatches_total", mode="route", outcome="AgentNotFoundError") == 2
    assert delta("actorflow_agent_runs_total", agent="echo", status="ok") == sent
    assert delta("actorflow_http_requests_total", method="POST", path="/v1/dispatch", status="200") == sent
    assert delta("actorflow_http_requests_total", method="POST", path="/v1/dispatch", status="422") == 3
    assert delta("actorflow_http_requests_total", method="POST", path="/v1/dispatch", status="404") == 2
    assert delta("actorflow_http_requests_total", method="GET", path="/metrics", status="200") == 1
    assert delta("actorflow_http_request_duration_seconds_count", path="/v1/dispatch") == sent + 5
    assert after[("actorflow_dispatches_in_flight", ())] == 0


# -- the CLI ---------------------------------------------------------------------------------


def test_cli_serve_drains_a_request_in_flight_on_sigterm(tmp_path):
    config = tmp_path / "slow.toml"
    config.write_text('[orchestration]\nmode = "route"\n[agents.slow]\nhandler = "agents:async_sleeps"\n')
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), str(REPO)])}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "actorflow", "serve", str(config), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
    )
    try:
        line = proc.stdout.readline()
        assert f"at http://127.0.0.1:{port}" in line, line + proc.stderr.read()
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            slow = pool.submit(post_once, port, "/v1/dispatch", {"target": "slow", "data": {"sleep": 2}})
            watcher = Client(port)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not watcher.request("GET", "/v1/agents")[1]["agents"][0]["in_flight"]:
                pass
            watcher.close()
            proc.send_signal(signal.SIGTERM)
            status, answer = slow.result(timeout=30)
        assert status == 200 and answer["state"]["data"]["slept"] is True
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "SIGTERM: draining" in err and "actorflow: stopped" in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_replica_spreads_sessions_over_its_supervisors(client):
    # [runtime] supervisors = 2 inside the replica's own runner: both take sessions, /metrics
    # labels each supervisor's samples.
    for i in range(12):
        status, body = client.post("/spread/v1/dispatch", {"target": "echo", "data": {"x": i},
                                                           "metadata": {"session_id": f"spread-{i}"}})
        assert status == 200 and body["ok"], body
    samples = metric_samples(client, "spread")
    per_supervisor = {
        dict(labels)["supervisor"]: value
        for (name, labels), value in samples.items()
        if name == "actorflow_dispatches_total"
    }
    assert set(per_supervisor) == {"0", "1"} and sum(per_supervisor.values()) == 12
