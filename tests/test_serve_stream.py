"""`POST /v1/dispatch/stream` on a real Ray Serve instance, read by a real HTTP client."""

from __future__ import annotations

import http.client
import json
import socket
import time

import pytest

from actorflow import load_config

pytestmark = pytest.mark.timeout(120)

TOML = """
[orchestration]
mode = "route"
timeout_seconds = 30
retry_attempts = 0

[agents.echo]
handler = "agents:returns_dict"

[agents.broken]
handler = "agents:fails"

[agents.waiter]
handler = "test_streaming:notes_cancel"
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def port(ray_session, tmp_path_factory):
    from ray import serve

    from actorflow.serve import application

    path = tmp_path_factory.mktemp("stream") / "route.toml"
    path.write_text(TOML)
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    try:
        serve.run(application(load_config(path)), name="stream", route_prefix="/s")
        yield port
    finally:
        serve.shutdown()


def post(port: int, payload) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = payload if isinstance(payload, str) else json.dumps(payload)
    conn.request("POST", "/s/v1/dispatch/stream", body, {"Content-Type": "application/json"})
    return conn, conn.getresponse()


def sse_messages(response: http.client.HTTPResponse):
    """Yield (event, data) per SSE message, as a client library would parse them."""
    event, data = None, []
    while True:
        line = response.readline()
        if not line:
            return
        line = line.decode().rstrip("\r\n")
        if not line:
            if data:
                yield event, json.loads("\n".join(data))
            event, data = None, []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip(" "))


def test_stream_answers_one_sse_message_per_update(port):
    conn, response = post(port, {"target": "echo", "data": {"x": 1}})
    try:
        assert response.status == 200
        assert response.getheader("content-type").startswith("text/event-stream")
        messages = list(sse_messages(response))
    finally:
        conn.close()
    assert [event for event, _ in messages] == ["dispatch_started", "agent_started", "agent_finished", "dispatch_finished"]
    assert all(event == data["kind"] for event, data in messages)
    assert messages[2][1]["run"]["agent"] == "echo" and messages[2][1]["run"]["status"] == "ok"
    result = messages[-1][1]["result"]
    assert result["ok"] and result["state"]["data"]["from_dict"] == 2


def test_failed_agent_is_streamed_to_dispatch_finished(port):
    conn, response = post(port, {"target": "broken"})
    try:
        assert response.status == 200
        messages = list(sse_messages(response))
    finally:
        conn.close()
    assert messages[-1][0] == "dispatch_finished"
    result = messages[-1][1]["result"]
    assert not result["ok"] and result["failed_agents"] == ["broken"]


@pytest.mark.parametrize(
    "payload, status, error_type",
    [({"target": "nobody"}, 404, "AgentNotFoundError"), ("{not json", 400, "MalformedBody"), ({"data": {}}, 422, "ValidationError")],
)
def test_errors_before_the_dispatch_starts_are_json(port, payload, status, error_type):
    conn, response = post(port, payload)
    try:
        assert response.status == status
        assert response.getheader("content-type").startswith("application/json")
        assert json.loads(response.read())["error"]["type"] == error_type
    finally:
        conn.close()


def test_client_disconnect_cancels_the_dispatch(port, tmp_path):
    marker = tmp_path / "cancelled"
    conn, response = post(port, {"target": "waiter", "data": {"cancelled": str(marker)}})
    messages = sse_messages(response)
    assert next(messages)[0] == "dispatch_started"
    assert next(messages)[0] == "agent_started"
    conn.sock.shutdown(socket.SHUT_RDWR)
    conn.close()
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists() and marker.read_text() == "cancelled"


def test_metrics_count_the_streamed_dispatches(port):
    from prometheus_client.parser import text_string_to_metric_families

    def scrape():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request("GET", "/s/metrics")
            response = conn.getresponse()
            assert response.status == 200
            text = response.read().decode()
        finally:
            conn.close()
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    key = ("actorflow_dispatch_duration_seconds_count", (("mode", "route"), ("outcome", "ok")))
    http_key = ("actorflow_http_requests_total", (("method", "POST"), ("path", "/v1/dispatch/stream"), ("status", "200")))
    before = scrape()
    for _ in range(3):
        conn, response = post(port, {"target": "echo"})
        list(sse_messages(response))
        conn.close()
    after = scrape()
    assert after[key] - before.get(key, 0) == 3
    assert after[http_key] - before.get(http_key, 0) == 3
