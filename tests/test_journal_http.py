"""`/v1/dispatches/{event_id}` and `…/resume` through a real `actorflow serve --journal` process
(API key on, SQLite journal), with a ledger file counting every agent run across restarts."""

from __future__ import annotations

import concurrent.futures
import json
import time
import uuid

import pytest

import journal_agents
from journal_agents import ledger
from test_ops import KEY_VAR, Server, strict_json

pytestmark = pytest.mark.timeout(180)

APPROVAL_TOML = journal_agents.APPROVAL_TOML + f'\n[serve]\napi_key_env = "{KEY_VAR}"\n'


@pytest.fixture(scope="module")
def journal_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("journal-http")


def start(journal_dir) -> Server:
    return Server(journal_dir, APPROVAL_TOML, ("--journal", f"sqlite:///{journal_dir / 'journal.db'}"))


@pytest.fixture(scope="module")
def server(journal_dir):
    server = start(journal_dir)
    yield server
    server.stop()


def call(server: Server, method: str, path: str, body=None, **kwargs) -> tuple[int, dict]:
    status, _, raw = server.request(method, path, body, **kwargs)
    return status, strict_json(raw)


def dispatch(server: Server, tmp_path, **data) -> dict:
    status, body = call(server, "POST", "/v1/dispatch",
                        {"target": "prepare", "data": {"ledger": str(tmp_path / "ledger"), **data}})
    assert status == 200, body
    return body


def test_an_interrupted_dispatch_is_resumed_over_http(server, tmp_path):
    paused = dispatch(server, tmp_path, amount=250)
    event_id = paused["event_id"]
    assert paused["interrupted"] is True and paused["ok"] is False and paused["error"] is None
    assert paused["interrupt"] == {"agent": "approve", "reason": "approve the amount?", "payload": {"amount": 250}}
    assert ledger(tmp_path / "ledger") == ["prepare", "approve"]

    status, body = call(server, "GET", f"/v1/dispatches/{event_id}")
    assert status == 200 and (body["event_id"], body["status"]) == (event_id, "interrupted")
    assert body["result"]["interrupt"] == paused["interrupt"]

    status, done = call(server, "POST", f"/v1/dispatches/{event_id}/resume", {"data": {"approved": "ada"}})
    assert status == 200, done
    assert done["ok"] is True and done["interrupted"] is False and done["event_id"] == event_id
    assert done["state"]["data"]["approved_by"] == "ada" and done["state"]["data"]["published"] is True
    assert ledger(tmp_path / "ledger") == ["prepare", "approve", "approve", "publish"]  # prepare not rerun

    status, body = call(server, "GET", f"/v1/dispatches/{event_id}")
    assert status == 200 and body["status"] == "finished" and body["result"]["ok"] is True
    status, body = call(server, "POST", f"/v1/dispatches/{event_id}/resume", {"data": {"approved": "bob"}})
    assert status == 409 and body["error"]["type"] == "DispatchNotResumableError" and event_id in body["error"]["message"]
    assert ledger(tmp_path / "ledger") == ["prepare", "approve", "approve", "publish"]


def test_a_finished_event_id_answers_its_recorded_result_and_runs_nothing(server, tmp_path):
    event_id = f"order-{uuid.uuid4().hex[:8]}"
    body = {"target": "prepare", "event_id": event_id, "data": {"ledger": str(tmp_path / "ledger"), "approved": "ada"}}
    first = call(server, "POST", "/v1/dispatch", body)
    again = call(server, "POST", "/v1/dispatch", body)
    assert first[0] == again[0] == 200 and first[1]["ok"] is True and first[1]["event_id"] == event_id
    assert again[1]["state"] == first[1]["state"]
    assert ledger(tmp_path / "ledger") == ["prepare", "approve", "publish"]


def test_a_running_dispatch_is_reported_running_and_cannot_be_resumed(server, tmp_path):
    hold = tmp_path / "hold"
    hold.touch()
    event_id = f"slow-{uuid.uuid4().hex[:8]}"
    body = {"target": "prepare", "event_id": event_id,
            "data": {"ledger": str(tmp_path / "ledger"), "approved": "ada", "hold": str(hold)}}
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        answer = pool.submit(call, server, "POST", "/v1/dispatch", body)
        try:
            while ledger(tmp_path / "ledger") != ["prepare", "approve"]:  # until publish holds
                assert not answer.done(), answer.result()
                time.sleep(0.02)  # polling a file another process writes: nothing to wait on
            assert call(server, "GET", f"/v1/dispatches/{event_id}") == (
                200, {"event_id": event_id, "status": "running", "result": None})
            status, refused = call(server, "POST", f"/v1/dispatches/{event_id}/resume")
            assert status == 409 and refused["error"]["type"] == "DispatchNotResumableError"
        finally:
            hold.unlink()
        status, result = answer.result(timeout=60)
    assert status == 200 and result["ok"] is True
    assert ledger(tmp_path / "ledger") == ["prepare", "approve", "publish"]


@pytest.mark.parametrize(
    "body, status, error",
    [
        ("{not json", 400, "MalformedBody"),
        ('{"data": {"x": NaN}}', 400, "MalformedBody"),
        ('{"data": [1]}', 422, "ValidationError"),
        ('{"data": {}, "extra": 1}', 422, "ValidationError"),
    ],
)
def test_a_bad_resume_body_is_refused_before_anything_runs(server, tmp_path, body, status, error):
    paused = dispatch(server, tmp_path)
    got = call(server, "POST", f"/v1/dispatches/{paused['event_id']}/resume", body)
    assert got[0] == status and got[1]["error"]["type"] == error, got
    assert call(server, "GET", f"/v1/dispatches/{paused['event_id']}")[1]["status"] == "interrupted"
    assert ledger(tmp_path / "ledger") == ["prepare", "approve"]


def test_unknown_ids_are_404_and_both_routes_need_the_key(server):
    status, body = call(server, "GET", "/v1/dispatches/no-such-id")
    assert status == 404 and body["error"]["type"] == "DispatchNotFoundError" and "no-such-id" in body["error"]["message"]
    status, body = call(server, "POST", "/v1/dispatches/no-such-id/resume", {"data": {}})
    assert status == 404 and body["error"]["type"] == "DispatchNotFoundError"
    for method, path in [("GET", "/v1/dispatches/x"), ("POST", "/v1/dispatches/x/resume")]:
        assert server.request(method, path, key=False)[0] == 401


def test_the_routes_are_in_the_openapi_schema(server):
    status, doc = call(server, "GET", "/openapi.json")
    assert status == 200
    get = doc["paths"]["/v1/dispatches/{event_id}"]["get"]
    post = doc["paths"]["/v1/dispatches/{event_id}/resume"]["post"]
    assert {"200", "404"} <= set(get["responses"]) and {"200", "400", "404", "409"} <= set(post["responses"])
    assert post["requestBody"]["required"] is False


def test_an_interrupted_dispatch_survives_a_server_restart(server, journal_dir, tmp_path):
    """Runs last: it replaces the module's server with a new process on the same journal."""
    paused = dispatch(server, tmp_path)
    server.stop()
    assert server.proc.returncode == 0, server.stderr()[-2000:]

    again = start(journal_dir)
    try:
        status, body = call(again, "GET", f"/v1/dispatches/{paused['event_id']}")
        assert status == 200 and body["status"] == "interrupted" and body["result"]["interrupt"]["agent"] == "approve"
        status, done = call(again, "POST", f"/v1/dispatches/{paused['event_id']}/resume",
                            json.dumps({"data": {"approved": "eve"}}))
        assert status == 200 and done["ok"] is True and done["state"]["data"]["approved_by"] == "eve", done
    finally:
        again.stop()
    assert ledger(tmp_path / "ledger") == ["prepare", "approve", "approve", "publish"]
