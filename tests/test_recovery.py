"""Durable dispatches on a journal: crash recovery with a real kill, idempotent event ids, two
runners on one journal, interrupts across a restart. Side effects are counted in files
(durable_agents); the crash test's driver is a separate process with its own embedded Ray."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from actorflow import (
    ActorflowError, AgentFailedError, AgentFlowConfig, ConfigError, DispatchError, DispatchNotFoundError,
    DispatchNotResumableError, Event, JournalError, Runner,
)
from actorflow.journal import open_journal
from actorflow.runtime.journaled import MAX_RUNS

import durable_agents as da

pytestmark = pytest.mark.timeout(240)

TESTS = Path(__file__).resolve().parent
DRIVER = TESTS / "recovery_driver.py"

# Before the kill, per mode: the agents whose steps must be recorded, and the log line of the
# run that must be in flight.
MODES = ("sequential", "collaborative", "loop", "mixed")
FINISHED_BEFORE = {"sequential": 2, "collaborative": 2, "loop": 2, "mixed": 2}
IN_FLIGHT = {"sequential": "slow-start", "collaborative": "slow-start", "loop": "loop3", "mixed": "slow-start"}
EXPECTED = {  # runs per agent after the recovery: finished ones once, the one in flight twice
    "sequential": {"a": 1, "b": 1, "slow-start": 2, "slow": 1, "c": 1},
    "collaborative": {"a": 1, "b": 1, "slow-start": 2, "slow": 1},
    "loop": {"loop1": 1, "loop2": 1, "loop3": 2, "loop4": 1},
    "mixed": {"a": 1, "b": 1, "slow-start": 2, "slow": 1, "c": 1},
}


def until(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def driver(where, what, urls):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)])}
    return subprocess.Popen([sys.executable, str(DRIVER), str(where), what, *urls], cwd=where, env=env,
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def descendants(pid):
    """The process ids under `pid` (Ray's workers start their own sessions: killpg misses them)."""
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def alive(pid):
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def kill_everything(process):
    """SIGKILL the driver, its process group and every process it started (its Ray)."""
    tree = descendants(process.pid)
    os.killpg(process.pid, signal.SIGKILL)
    for pid in tree:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.communicate()
    return tree


def test_crash_recovery(tmp_path, request):
    """One driver runs the four modes on a SQLite journal and on a PostgreSQL one; SIGKILLed
    with finished runs and runs in flight; a new driver resumes: finished runs ran exactly once."""
    urls = [f"sqlite:///{tmp_path / 'journal.db'}"]
    try:
        urls.append(request.getfixturevalue("new_postgres_database")())
    except pytest.skip.Exception:  # no PostgreSQL binaries here (CI requires them): SQLite only
        pass
    logs = {f"{number}-{mode}": tmp_path / f"{number}-{mode}.log" for number in range(len(urls)) for mode in MODES}
    hold = tmp_path / "hold"
    hold.write_text("")
    first = driver(tmp_path, "start", urls)
    try:
        until(lambda: (tmp_path / "events.json").exists() or first.poll() is not None, 180, "the driver's events")
        assert first.poll() is None, first.communicate()
        ids = json.loads((tmp_path / "events.json").read_text())
        journals = [open_journal(url) for url in urls]

        def in_flight():
            for key, event_id in ids.items():
                number, mode = key.split("-")
                record = journals[int(number)].load(event_id)
                if record is None or len(record.steps) < FINISHED_BEFORE[mode]:
                    return False
                if da.counts(logs[key])[IN_FLIGHT[mode]] < 1:
                    return False
            return True

        until(in_flight, 120, "the finished steps and the runs in flight")
    finally:
        tree = kill_everything(first)
    until(lambda: not any(alive(pid) for pid in tree), 30, "the killed driver's processes to end")
    for key, event_id in ids.items():
        assert da.counts(logs[key])[IN_FLIGHT[key.split("-")[1]]] == 1
    for number, journal in enumerate(journals):
        assert {r.event_id for r in journal.unfinished()} == {ids[f"{number}-{mode}"] for mode in MODES}
        journal.close()

    hold.unlink()  # the rerun of the run in flight finishes at once
    second = driver(tmp_path, "resume", urls)
    out, err = second.communicate(timeout=180)
    assert second.returncode == 0, err[-3000:]
    results = json.loads(out.strip().splitlines()[-1])
    for key in ids:
        mode = key.split("-")[1]
        assert results[key]["ok"], (key, results[key]["error"])
        assert dict(da.counts(logs[key])) == EXPECTED[mode], key
        data = results[key]["state"]["data"]
        if mode == "sequential":
            assert data["trail"] == ["a", "b", "c"]
        elif mode == "loop":
            assert data["n"] == 4 and results[key]["iterations"] == 4
        else:
            assert data["a"] and data["b"] and data["slow"]
    assert len(results) == 4 * len(urls)


# -- in this process: one Ray (the session's), runners on one SQLite journal -------------------


def config(**orchestration):
    orchestration.setdefault("retry_attempts", 0)
    orchestration.setdefault("mode", "sequential")
    orchestration.setdefault("sequential_agents", ["a", "gate", "b"])
    return AgentFlowConfig.model_validate({"orchestration": orchestration})


def broken(event, state):
    raise ValueError("broken gate")


@pytest.fixture(scope="module")
def runners(ray_session, tmp_path_factory):
    """Two runners on one SQLite journal (as two processes, or two Serve replicas, would be)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('journal') / 'journal.db'}"
    started = []
    for _ in range(2):
        runner = Runner(config(), journal=url, journal_lease_seconds=2)
        for name in ("a", "b", "gate", "slow"):
            runner.register_agent(name, getattr(da, name))
        runner.register_agent("broken", broken)
        started.append(runner.start())
    yield started
    for runner in started:
        runner.stop(timeout=5)


def test_idempotent_event_ids(runners, tmp_path):
    one, two = runners
    log = str(tmp_path / "log")
    event = Event("a", {"log": log, "approved": True})
    first = one.dispatch(event)
    again = one.dispatch(event)
    assert first.ok and again.to_dict() == first.to_dict()
    assert two.dispatch(event).to_dict() == first.to_dict()
    assert da.counts(log) == {"a": 1, "gate": 1, "b": 1}  # the others ran nothing
    assert two.result(event.id).to_dict() == first.to_dict()
    assert two.wait(event.id).ok and event.id not in two.pending()


def test_a_failed_dispatch_raises_the_same_error_again(runners, tmp_path):
    one, two = runners
    log = str(tmp_path / "log")
    event = Event("a", {"log": log})
    with pytest.raises(AgentFailedError) as first:
        one.dispatch(event, sequential_agents=["a", "broken"])
    with pytest.raises(AgentFailedError) as again:
        two.dispatch(event, sequential_agents=["a", "broken"])
    assert again.value.agent == first.value.agent == "broken" and str(again.value) == str(first.value)
    assert again.value.result.to_dict() == first.value.result.to_dict()
    assert da.counts(log) == {"a": 1}


def test_one_dispatch_runs_once_across_callers_and_runners(runners, tmp_path):
    """Joined in its runner, waited for from another runner on the same journal: run once."""
    one, two = runners
    log, hold = str(tmp_path / "log"), tmp_path / "hold"
    hold.write_text("")
    event = Event("slow", {"log": log, "hold": str(hold)})
    futures = [one.emit(event, mode="route"), one.emit(event, mode="route")]
    until(lambda: da.counts(log)["slow-start"] == 1, 60, "the slow run to start")
    results = []
    other = threading.Thread(target=lambda: results.append(two.dispatch(event, mode="route")))
    other.start()
    assert event.id in two.pending() and two.result(event.id) is None
    hold.unlink()
    other.join(60)
    first = futures[0].result(60)
    assert futures[1].result(60) is first  # joined: the same result
    assert results[0].to_dict() == first.to_dict()
    assert da.counts(log) == {"slow-start": 1, "slow": 1}


def test_an_interrupt_is_resumed_from_the_journal(runners, tmp_path):
    """Interrupted in one runner, resumed by another that knows it only from the journal."""
    one, two = runners
    log = str(tmp_path / "log")
    event = Event("a", {"log": log, "amount": 3})
    result = one.dispatch(event)
    assert result.interrupted and result.interrupt["payload"] == {"amount": 3}
    assert one.dispatch(event).interrupted  # idempotent: nothing runs
    assert event.id in two.pending() and two.result(event.id).interrupted
    resumed = two.resume(event.id, {"approved": True})
    assert resumed.ok and resumed.state.get("trail") == ["a", "gate", "b"]
    assert one.dispatch(event).to_dict() == resumed.to_dict()
    with pytest.raises(DispatchNotResumableError) as info:
        one.resume(event.id)
    assert info.value.status == "finished"
    with pytest.raises(DispatchNotFoundError):
        two.resume("unknown")
    assert event.id not in one.pending()
    assert da.counts(log) == {"a": 1, "gate": 2, "b": 1}


def test_journal_set_up_errors(ray_session, tmp_path):
    with pytest.raises(ConfigError) as info:
        Runner(journal="mysql://db/flows")
    assert "runtime" in str(info.value) and "mysql://db/flows" in str(info.value)
    (tmp_path / "not-a-journal.db").write_text("these are not the bytes of a SQLite database")
    runner = Runner(journal=f"sqlite:///{tmp_path / 'not-a-journal.db'}")
    runner.register_agent("a", da.a)
    with pytest.raises(JournalError):
        runner.start()
    assert not runner.started and runner.supervisor_pid is None  # nothing started
    assert (tmp_path / "not-a-journal.db").read_text().startswith("these are not")  # refused, untouched


def test_every_way_in_is_journaled(runners, tmp_path):
    """stream, stream_async, dispatch_async and emit record and replay like dispatch."""
    import asyncio

    one, two = runners
    log = str(tmp_path / "log")
    streamed = Event("a", {"log": log, "approved": True})
    updates = list(one.stream(streamed))
    assert [u.kind for u in updates][0] == "dispatch_started" and updates[-1].result.ok
    again = list(two.stream(streamed))  # finished: only its dispatch_finished
    assert [u.kind for u in again] == ["dispatch_finished"]
    assert again[-1].result.to_dict() == updates[-1].result.to_dict()

    async def asynchronous():
        event = Event("a", {"log": log, "approved": True})
        first = await one.dispatch_async(event)
        seen = [update async for update in two.stream_async(event)]
        return first, seen

    first, seen = asyncio.run(asynchronous())
    assert first.ok and [u.kind for u in seen] == ["dispatch_finished"] and seen[0].result.to_dict() == first.to_dict()
    emitted = Event("a", {"log": log, "approved": True})
    assert one.emit(emitted).result(60).to_dict() == two.emit(emitted).result(60).to_dict()
    assert da.counts(log) == {"a": 3, "gate": 3, "b": 3}  # three events, each run once


def test_a_resume_cut_short_by_a_crash_recovers_with_its_data(runners, tmp_path):
    """The journal as a runner that died while resuming leaves it (the resume's data recorded,
    its lease expiring): another runner takes it over and finishes it with the data."""
    from actorflow.runtime.durable import RESUME_STEP

    one, two = runners
    log = str(tmp_path / "log")
    event = Event("a", {"log": log})
    assert one.dispatch(event).interrupted
    journal = open_journal(one.config.runtime.journal)
    try:
        step = journal.load(event.id).interrupt["step"]
        assert journal.claim(event.id, "a-runner-that-died", 0.5) is not None
        journal.record_step(event.id, RESUME_STEP + step, {}, {"data": {"approved": True}})
    finally:
        journal.close()
    result = two.wait(event.id, timeout=60)
    assert result.ok and result.state.get("trail") == ["a", "gate", "b"]
    assert da.counts(log) == {"a": 1, "gate": 2, "b": 1}


def test_a_stream_whose_consumer_goes_away_is_cancelled_for_good(runners, tmp_path):
    """Breaking out of `stream` (or closing `stream_async`, as an HTTP client hanging up does)
    mid-agent records the dispatch failed: neither the keeper nor a later dispatch runs it again."""
    import asyncio

    one, two = runners
    log, hold = str(tmp_path / "log"), tmp_path / "hold"
    hold.write_text("")
    journal = open_journal(one.config.runtime.journal)
    slow_started = lambda n: lambda: da.counts(log)["slow-start"] == n  # noqa: E731
    sync, asynchronous = (Event("a", {"log": log, "hold": str(hold)}) for _ in range(2))
    try:
        for update in one.stream(sync, sequential_agents=["a", "slow", "b"]):
            if update.kind == "agent_started" and update.agent == "slow":
                until(slow_started(1), 60, "the slow run to start")
                break
        record = journal.load(sync.id)
        assert record.status == "finished" and not record.result["ok"]

        async def close_early():
            updates = one.stream_async(asynchronous, sequential_agents=["a", "slow", "b"])
            async for update in updates:
                if update.kind == "agent_started" and update.agent == "slow":
                    await asyncio.to_thread(until, slow_started(2), 60, "the second slow run to start")
                    break
            await updates.aclose()

        asyncio.run(close_early())
        until(lambda: journal.load(asynchronous.id).status == "finished", 30, "the async stream's cancel to be recorded")
        for event in (sync, asynchronous):
            with pytest.raises(DispatchError, match="consumer of its stream went away") as info:
                two.dispatch(event, sequential_agents=["a", "slow", "b"])
            assert [run.agent for run in info.value.result.runs] == ["a"] and not info.value.result.ok
            assert [u.kind for u in one.stream(event)] == ["dispatch_finished"]
    finally:
        hold.unlink()
        journal.close()
    assert da.counts(log)["a"] == 2 and da.counts(log)["slow-start"] == 2 and da.counts(log)["b"] == 0


def test_a_dispatch_that_keeps_failing_in_the_runtime_is_given_up(runners, tmp_path):
    """The supervisor's journal writes of this event fail (SQLite triggers refuse them), so its
    dispatch task raises and the dispatch stays running: the keeper reruns it, MAX_RUNS runs in
    all, then records it failed with the last error."""
    import sqlite3

    from sqlalchemy.engine import make_url

    one, two = runners
    log = str(tmp_path / "log")
    event = Event("a", {"log": log, "approved": True})
    path = make_url(one.config.runtime.journal).database
    this, fail = f"NEW.event_id = '{event.id}'", "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
    with sqlite3.connect(path) as db:  # the runner's own record of giving up (a DispatchError) passes
        db.execute(f"CREATE TRIGGER refuse_steps BEFORE INSERT ON actorflow_steps WHEN {this} {fail}")
        db.execute(f"CREATE TRIGGER refuse_end BEFORE UPDATE ON actorflow_dispatches WHEN {this} AND NEW.status = 'finished'"
                   f" AND json_extract(NEW.result, '$.raised.type') IS NOT 'DispatchError' {fail}")
    journal = open_journal(one.config.runtime.journal)
    try:
        with pytest.raises(ActorflowError, match="refused by the test"):
            one.dispatch(event)
        until(lambda: journal.load(event.id).status == "finished", 60, "the dispatch to be given up")
    finally:
        journal.close()
        with sqlite3.connect(path) as db:
            db.execute("DROP TRIGGER refuse_steps")
            db.execute("DROP TRIGGER refuse_end")
    assert da.counts(log) == {"a": MAX_RUNS}  # its step was never recorded, so each run ran it
    with pytest.raises(DispatchError, match=f"failed in the runtime {MAX_RUNS} times") as info:
        two.dispatch(event)
    assert "refused by the test" in str(info.value) and not info.value.result.ok
    assert da.counts(log) == {"a": MAX_RUNS}


def test_a_relative_sqlite_journal_is_the_same_file_for_every_process(ray_session, tmp_path, monkeypatch):
    """`sqlite:///relative.db` is resolved against the driver's directory at start: the
    supervisors (another working directory) and later connections (after a chdir) use that file."""
    first, elsewhere = tmp_path / "first", tmp_path / "elsewhere"
    first.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(first)
    runner = Runner(config(sequential_agents=["a"]), journal="sqlite:///relative.db", journal_lease_seconds=2)
    runner.register_agent("a", da.a)
    runner.start()
    try:
        monkeypatch.chdir(elsewhere)
        event = Event("a", {"log": str(tmp_path / "log")})
        assert runner.dispatch(event).ok
        assert runner.config.runtime.journal == f"sqlite:///{first / 'relative.db'}"
    finally:
        runner.stop(timeout=5)
    journal = open_journal(f"sqlite:///{first / 'relative.db'}")
    try:
        assert journal.load(event.id).status == "finished"
    finally:
        journal.close()
    assert not (elsewhere / "relative.db").exists() and da.counts(tmp_path / "log") == {"a": 1}
