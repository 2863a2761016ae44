"""Operations and security through a real `actorflow serve` process and real HTTP (127.0.0.1).

One server for the module, started with an API key in its environment: authentication and
CORS, strict JSON, backpressure, current process ids after a kill, the schemathesis fuzzer,
and last, SIGTERM under concurrent load (the drain). Failing to join a cluster runs
`actorflow run` against a port where nothing listens.
"""

from __future__ import annotations

import collections
import concurrent.futures
import http.client
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time

import pytest

from conftest import REPO, TESTS

pytestmark = pytest.mark.timeout(180)

KEY_VAR = "AF_OPS_TEST_KEY"
ORIGIN = "https://console.example"

OPS_TOML = f"""
[orchestration]
mode = "route"
timeout_seconds = 20

[orchestration.circuit_breaker]
failure_threshold = 100

[agents.echo]
handler = "agents:returns_dict"

[agents.slow]
handler = "agents:async_sleeps"
max_concurrency = 64

[agents.narrow]
handler = "agents:async_sleeps"
mailbox_size = 1

[agents.victim]
handler = "agents:returns_dict"

[agents.odd]
handler = "agents:returns_non_finite"

[serve]
api_key_env = "{KEY_VAR}"
cors_origins = ["{ORIGIN}"]
max_ongoing_requests = 6
"""


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def strict_json(raw: bytes):
    """json.loads that refuses what RFC 8259 forbids (Python accepts NaN and Infinity)."""

    def refuse(token: str):
        raise ValueError(f"not JSON: {token}")

    return json.loads(raw, parse_constant=refuse)


class Server:
    """The `actorflow serve` process under test."""

    def __init__(self, tmp_path, toml: str = OPS_TOML, args: tuple[str, ...] = ()) -> None:
        self.key = secrets.token_urlsafe(24)
        self.port = free_port()
        config = tmp_path / "ops.toml"
        config.write_text(toml)
        env = {**os.environ, KEY_VAR: self.key, "PYTHONPATH": os.pathsep.join([str(TESTS), str(REPO)])}
        env.pop("RAY_ADDRESS", None)
        # stderr to a file: Serve logs every request there, and a full pipe would block the server.
        self.stderr_path = tmp_path / "serve.err"
        with open(self.stderr_path, "w") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "actorflow", "serve", str(config), "--port", str(self.port), *args],
                stdout=subprocess.PIPE, stderr=stderr, text=True, env=env, cwd=tmp_path,
            )
        line = self.proc.stdout.readline()
        if f"at http://127.0.0.1:{self.port}" not in line:
            self.stop()
            pytest.fail(f"actorflow serve did not start: {line}{self.stderr()[-3000:]}")

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def request(self, method, path, body=None, *, key=True, headers=None, timeout=30):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            sent = dict(headers or {})
            if key:
                sent["Authorization"] = f"Bearer {self.key}"
            conn.request(method, path, body if not isinstance(body, dict) else json.dumps(body), sent)
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def agents(self) -> dict[str, dict]:
        status, _, raw = self.request("GET", "/v1/agents")
        assert status == 200, raw
        return {agent["name"]: agent for agent in strict_json(raw)["agents"]}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("ops"))
    yield server
    server.stop()


# -- 6. authentication and CORS --------------------------------------------------------------


def test_api_key_is_required_except_for_health(server):
    for key, headers in [(False, {}), (False, {"Authorization": "Bearer wrong"}), (False, {"Authorization": server.key})]:
        status, got, raw = server.request("POST", "/v1/dispatch", {"target": "echo"}, key=key, headers=headers)
        assert (status, strict_json(raw)["error"]["type"]) == (401, "Unauthorized")
        assert got["www-authenticate"].startswith("Bearer") and server.key not in raw.decode()
    for path in ("/v1/agents", "/metrics", "/openapi.json", "/docs"):
        assert server.request("GET", path, key=False)[0] == 401, path

    status, _, raw = server.request("POST", "/v1/dispatch", {"target": "echo", "data": {"x": 1}})
    assert status == 200 and strict_json(raw)["state"]["data"]["from_dict"] == 2
    status, _, raw = server.request("GET", "/v1/health", key=False)
    assert (status, strict_json(raw)["status"]) == (200, "ok")


def test_cors_allows_only_the_configured_origins(server):
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}
    status, headers, _ = server.request("OPTIONS", "/v1/dispatch", key=False, headers={"Origin": ORIGIN, **preflight})
    assert status == 200 and headers["access-control-allow-origin"] == ORIGIN
    assert "authorization" in headers["access-control-allow-headers"].lower()

    status, headers, _ = server.request("OPTIONS", "/v1/dispatch", key=False, headers={"Origin": "https://evil.example", **preflight})
    assert status == 400 and "access-control-allow-origin" not in headers
    _, headers, _ = server.request("GET", "/v1/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in headers


# -- 3. strict JSON both ways ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, where",
    [
        (b'{"target": "echo", "data": {"x": NaN}}', "NaN"),
        (b'{"target": "echo", "data": {"x": Infinity}}', "Infinity"),
        (b'{"target": "echo", "data": {"x": [1, -Infinity]}}', "-Infinity"),
        (b'{"target": "echo", "data": {"x": {"y": 1e999}}}', "data.x.y"),
    ],
)
def test_non_finite_numbers_in_a_request_are_400(server, body, where):
    if where.lstrip("-").isalpha():  # the message names the token's line and column
        where = f"line 1 column {body.index(where.lstrip('-').encode()) + 1}"
    status, _, raw = server.request("POST", "/v1/dispatch", body)
    error = strict_json(raw)["error"]
    assert (status, error["type"]) == (400, "MalformedBody") and where in error["message"], error


def test_responses_are_strict_json_when_agents_produce_nan(server):
    status, _, raw = server.request("POST", "/v1/dispatch", {"target": "odd"})
    assert status == 200
    data = strict_json(raw)["state"]["data"]
    assert (data["ratio"], data["ceiling"], data["floor"]) == (None, None, [None, 1.5])


# -- 7. backpressure ------------------------------------------------------------------------------


def test_past_the_limits_the_answer_is_fast_json_with_retry_after(server):
    limit = 6  # [serve] max_ongoing_requests
    with concurrent.futures.ThreadPoolExecutor(limit + 1) as pool:
        held = [
            pool.submit(server.request, "POST", "/v1/dispatch", {"target": "slow", "data": {"sleep": 6}})
            for _ in range(limit)
        ]
        deadline = time.monotonic() + 20
        while server.agents()["slow"]["in_flight"] < limit:
            assert time.monotonic() < deadline, "the held dispatches never reached the agent"

        started = time.monotonic()
        status, headers, raw = server.request("POST", "/v1/dispatch", {"target": "echo"})
        assert time.monotonic() - started < 4  # answered while the held dispatches still run
        assert (status, strict_json(raw)["error"]["type"], headers["retry-after"]) == (503, "Overloaded", "1")
        assert server.request("GET", "/v1/health", key=False)[0] == 200  # probes still answered

        assert [f.result(timeout=30)[0] for f in held] == [200] * limit

    # a full mailbox: 429 with Retry-After
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        first = pool.submit(server.request, "POST", "/v1/dispatch", {"target": "narrow", "data": {"sleep": 2}})
        deadline = time.monotonic() + 20
        while not server.agents()["narrow"]["in_flight"]:
            assert time.monotonic() < deadline
        status, headers, raw = server.request("POST", "/v1/dispatch", {"target": "narrow", "data": {"sleep": 0}})
        assert (status, strict_json(raw)["error"]["type"], headers["retry-after"]) == (429, "MailboxFullError", "1")
        assert first.result(timeout=30)[0] == 200


# -- 2. /v1/agents after Ray restarted an agent ---------------------------------------------------


def test_agents_lists_current_pids_and_restarts(server):
    before = server.agents()["victim"]
    assert before["restarts"] == 0 and len(before["pids"]) == 1
    os.kill(before["pids"][0], signal.SIGKILL)

    status, _, raw = server.request("POST", "/v1/dispatch", {"target": "victim", "data": {"x": 1}})
    assert status == 200, raw  # the call that met the dead actor was retried on the restarted one

    deadline = time.monotonic() + 20
    while (after := server.agents()["victim"])["pids"][0] in (before["pids"][0], None):
        assert time.monotonic() < deadline, after
    assert after["restarts"] == 1 and after["pids"][0] != before["pids"][0]
    os.kill(after["pids"][0], 0)  # the listed process is alive
    assert server.agents()["echo"]["restarts"] == 0


# -- 8. the schemathesis fuzzer ---------------------------------------------------------------------


def test_schemathesis_finds_no_5xx_and_only_schema_conforming_json(server):
    import hypothesis
    import schemathesis
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

    schema = schemathesis.openapi.from_url(
        f"http://127.0.0.1:{server.port}/openapi.json", headers={"Authorization": f"Bearer {server.key}"}
    )
    auth = {"Authorization": f"Bearer {server.key}"}
    counts: collections.Counter[int] = collections.Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/dispatch", "/v1/agents", "/v1/health", "/metrics"}
    def retarget(pair):  # half the valid bodies go to real agents, so the whole dispatch path runs
        case, agent = pair
        if agent and isinstance(case.body, dict):
            case.body["target"] = agent
        return case

    started = time.monotonic()
    for operation in operations:
        modes = list(schemathesis.GenerationMode) if operation.path == "/v1/dispatch" else [schemathesis.GenerationMode.POSITIVE]
        for mode in modes:  # negative data needs something to break: only the dispatch takes a body
            strategy = operation.as_strategy(generation_mode=mode)
            if mode is schemathesis.GenerationMode.POSITIVE and operation.path == "/v1/dispatch":
                strategy = hypothesis.strategies.tuples(
                    strategy, hypothesis.strategies.sampled_from([None, "echo", "odd", "slow"])
                ).map(retarget)

            @hypothesis.given(case=strategy)
            @hypothesis.settings(
                max_examples=150 if operation.path == "/v1/dispatch" else 40, deadline=None, database=None, derandomize=True,
                suppress_health_check=list(hypothesis.HealthCheck), phases=[hypothesis.Phase.generate],
            )
            def fuzz(case):
                response = case.call(headers=auth, timeout=30)
                counts[response.status_code] += 1
                assert response.status_code < 500, (case.method, case.path, case.body, response.text[:500])
                content_type = {k.lower(): v for k, v in response.headers.items()}.get("content-type", [""])[0]
                if content_type.startswith("application/json"):
                    strict_json(response.content)
                case.validate_response(
                    response, checks=[not_a_server_error, response_schema_conformance, content_type_conformance]
                )

            fuzz()
    elapsed = time.monotonic() - started
    print(f"schemathesis: {sum(counts.values())} requests in {elapsed:.1f} s, statuses {dict(sorted(counts.items()))}")
    assert sum(counts.values()) >= 100
    assert not [code for code in counts if code >= 500]


# -- 1. drain: SIGTERM under concurrent load ----------------------------------------------------


def test_sigterm_under_load_answers_200_or_json_503_until_exit(server):
    """Runs last: it stops the module's server."""
    stop = threading.Event()
    outcomes: collections.Counter = collections.Counter()
    health: collections.Counter = collections.Counter()
    lock = threading.Lock()

    def record(counter, status, headers, raw):
        try:
            body = strict_json(raw)
            kind = body["error"]["type"] if status != 200 else "ok"
        except (ValueError, KeyError, TypeError):
            kind = "not JSON"
        retry = "retry-after" in headers
        with lock:
            counter[(status, kind, retry)] += 1

    def load(index: int) -> None:
        conn = None
        while not stop.is_set():
            try:
                conn = conn or http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
                body = json.dumps({"target": "slow", "data": {"sleep": 0.2, "i": index}})
                conn.request("POST", "/v1/dispatch", body, {"Authorization": f"Bearer {server.key}"})
                response = conn.getresponse()
                record(outcomes, response.status, dict(response.getheaders()), response.read())
            except (OSError, http.client.HTTPException) as err:  # the proxy closed: the server is going
                with lock:
                    outcomes[type(err).__name__] += 1
                if conn is not None:
                    conn.close()
                conn = None
                if isinstance(err, ConnectionRefusedError) or server.proc.poll() is not None:
                    return

    def probe() -> None:
        while not stop.is_set() and server.proc.poll() is None:
            try:
                record(health, *server.request("GET", "/v1/health", key=False, timeout=10))
            except (OSError, http.client.HTTPException):
                return

    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        long_one = pool.submit(server.request, "POST", "/v1/dispatch", {"target": "slow", "data": {"sleep": 2}})
        workers = [pool.submit(load, i) for i in range(5)] + [pool.submit(probe)]
        deadline = time.monotonic() + 20
        while server.agents()["slow"]["in_flight"] < 2 or sum(outcomes.values()) < 20:
            assert time.monotonic() < deadline
        server.proc.send_signal(signal.SIGTERM)
        try:
            status, _, raw = long_one.result(timeout=60)
            server.proc.wait(timeout=90)
        finally:
            stop.set()
            for worker in workers:
                worker.result(timeout=60)
    err = server.stderr()

    print(f"drain: dispatches {dict(outcomes)}; health {dict(health)}")
    assert status == 200 and strict_json(raw)["state"]["data"]["slept"] is True
    # Every answer is a 200 or a JSON 503 Draining with Retry-After (Overloaded, too, would be
    # legitimate); the only other outcome is the connection closing as the process exits.
    # Never a 404 or a plain-text body.
    answered = {key for key in outcomes if isinstance(key, tuple)}
    assert answered <= {(200, "ok", False), (503, "Draining", True), (503, "Overloaded", True)}, outcomes
    assert outcomes[(503, "Draining", True)] > 0 and outcomes[(200, "ok", False)] > 0
    assert set(health) <= {(200, "ok", False), (503, "Draining", True)} and (503, "Draining", True) in health
    assert server.proc.returncode == 0, err[-3000:]
    assert "SIGTERM: draining" in err and "actorflow: stopped" in err
    assert server.key not in err


# -- 4. a cluster that cannot be joined -----------------------------------------------------------


def test_joining_nothing_is_exit_2_with_one_paragraph_in_bounded_time(tmp_path):
    address = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(REPO)])}
    env.pop("RAY_ADDRESS", None)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "actorflow", "run", str(REPO / "configs" / "route.toml"), "--address", address],
        capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path,
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 2, done.stderr[-3000:]
    assert elapsed < 60  # Ray alone retries for 20 s to minutes; ~1 s on a quiet machine
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"cannot join the Ray cluster at {address}" in lines[0] and "port" in lines[0]


def test_serve_with_an_unset_api_key_variable_is_exit_2(tmp_path):
    config = tmp_path / "open.toml"
    config.write_text('[agents.echo]\nhandler = "agents:returns_dict"\n')
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(REPO)])}
    env.pop("AF_UNSET_KEY", None)
    done = subprocess.run(
        [sys.executable, "-m", "actorflow", "serve", str(config), "--port", str(free_port()), "--api-key-env", "AF_UNSET_KEY"],
        capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr[-3000:]
    assert "AF_UNSET_KEY" in done.stderr and "not set" in done.stderr
