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
    AgentFailedError, AgentFlowConfig, DispatchNotFoundError, DispatchNotResumableError, Event, Runner,
)
from actorflow.journal import open_journal

import durable_agents as da

pytestmark = pytest.mark.timeout(240)

TESTS = Path(__file__).resolve().parent
DRIVER = TESTS / "recovery_driver.py"

# Before the kill, per mode: the agents whose steps must be recorded, and the log line of the
# run that must be in flight.
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


def driver(url, where, what):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)])}
    return subprocess.Popen([sys.executable, str(DRIVER), url, str(where), what], cwd=where, env=env,
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


def crash_and_recover(url, where):
    hold = where / "hold"
    hold.write_text("")
    first = driver(url, where, "start")
    try:
        until(lambda: (where / "events.json").exists() or first.poll() is not None, 120, "the driver's events")
        assert first.poll() is None, first.communicate()
        ids = json.loads((where / "events.json").read_text())
        journal = open_journal(url)

        def in_flight():
            for mode, event_id in ids.items():
                record = journal.load(event_id)
                if record is None or len(record.steps) < FINISHED_BEFORE[mode]:
                    return False
                if da.counts(where / f"{mode}.log")[IN_FLIGHT[mode]] < 1:
                    return False
            return True

        until(in_flight, 120, "the finished steps and the runs in flight")
    finally:
        tree = kill_everything(first)
    until(lambda: not any(alive(pid) for pid in tree), 30, "the killed driver's processes to end")
    before = {mode: da.counts(where / f"{mode}.log") for mode in ids}
    assert all(before[mode][IN_FLIGHT[mode]] == 1 for mode in ids)
    assert {record.event_id for record in journal.unfinished()} == set(ids.values())
    journal.close()

    hold.unlink()  # the rerun of the run in flight finishes at once
    second = driver(url, where, "resume")
    out, err = second.communicate(timeout=180)
    assert second.returncode == 0, err[-3000:]
    results = json.loads(out.strip().splitlines()[-1])
    for mode in ids:
        assert results[mode]["ok"], (mode, results[mode]["error"])
        assert dict(da.counts(where / f"{mode}.log")) == EXPECTED[mode], mode
    assert results["sequential"]["state"]["data"]["trail"] == ["a", "b", "c"]
    assert results["loop"]["state"]["data"]["n"] == 4
    assert results["mixed"]["state"]["data"]["c"] is True
    return results


def test_crash_recovery_sqlite(tmp_path):
    crash_and_recover(f"sqlite:///{tmp_path / 'journal.db'}", tmp_path)


def test_crash_recovery_postgresql(tmp_path, new_postgres_database):
    crash_and_recover(new_postgres_database(), tmp_path)


# -- in this process: one Ray (the session's), runners on one SQLite journal -------------------


def config(**orchestration):
    orchestration.setdefault("retry_attempts", 0)
    orchestration.setdefault("mode", "sequential")
    orchestration.setdefault("sequential_agents", ["a", "gate", "b"])
    return AgentFlowConfig.model_validate({"orchestration": orchestration})


def journaled_runner(url, **handlers):
    runner = Runner(config(), journal=url, journal_lease_seconds=2)
    for name in ("a", "b", "gate", "slow"):
        runner.register_agent(name, handlers.get(name, getattr(da, name)))
    return runner.start()


@pytest.fixture
def journal_url(tmp_path):
    return f"sqlite:///{tmp_path / 'journal.db'}"


def test_idempotent_event_ids(ray_session, journal_url, tmp_path):
    log = str(tmp_path / "log")
    with journaled_runner(journal_url) as runner:
        event = Event("a", {"log": log, "approved": True})
        first = runner.dispatch(event)
        again = runner.dispatch(event)
        assert first.ok and again.to_dict() == first.to_dict()
        assert da.counts(log) == {"a": 1, "gate": 1, "b": 1}  # the second ran nothing
        assert runner.result(event.id).to_dict() == first.to_dict()
        assert runner.wait(event.id).ok and event.id not in runner.pending()


def test_a_failed_dispatch_raises_the_same_error_again(ray_session, journal_url, tmp_path):
    log = str(tmp_path / "log")

    def broken(event, state):
        raise ValueError("broken gate")

    with journaled_runner(journal_url, gate=broken) as runner:
        event = Event("a", {"log": log})
        with pytest.raises(AgentFailedError) as first:
            runner.dispatch(event)
        with pytest.raises(AgentFailedError) as again:
            runner.dispatch(event)
    assert again.value.agent == first.value.agent == "gate" and str(again.value) == str(first.value)
    assert again.value.result.to_dict() == first.value.result.to_dict()
    assert da.counts(log) == {"a": 1}


def test_one_dispatch_runs_once_across_callers_and_runners(ray_session, journal_url, tmp_path):
    """Joined in its runner, waited for from another runner on the same journal: run once."""
    log, hold = str(tmp_path / "log"), tmp_path / "hold"
    hold.write_text("")
    with journaled_runner(journal_url) as one, journaled_runner(journal_url) as two:
        event = Event("slow", {"log": log, "hold": str(hold)})
        futures = [one.emit(event, mode="route"), one.emit(event, mode="route")]
        until(lambda: da.counts(log)["slow-start"] == 1, 60, "the slow run to start")
        other = threading.Thread(target=lambda: results.append(two.dispatch(event, mode="route")))
        results = []
        other.start()
        assert event.id in two.pending()
        hold.unlink()
        other.join(60)
        first = futures[0].result(60)
        assert futures[1].result(60) is first  # joined: the same result
        assert results[0].to_dict() == first.to_dict()
    assert da.counts(log) == {"slow-start": 1, "slow": 1}


def test_interrupt_survives_a_restart(ray_session, journal_url, tmp_path):
    log = str(tmp_path / "log")
    event = Event("a", {"log": log, "amount": 3})
    with journaled_runner(journal_url) as runner:
        result = runner.dispatch(event)
        assert result.interrupted and result.interrupt["payload"] == {"amount": 3}
        assert runner.dispatch(event).interrupted  # idempotent: nothing runs
    with journaled_runner(journal_url) as runner:
        assert runner.pending() == [event.id] and runner.result(event.id).interrupted
        resumed = runner.resume(event.id, {"approved": True})
        assert resumed.ok and resumed.state.get("trail") == ["a", "gate", "b"]
        with pytest.raises(DispatchNotResumableError) as info:
            runner.resume(event.id)
        assert info.value.status == "finished"
        with pytest.raises(DispatchNotFoundError):
            runner.resume("unknown")
        assert runner.pending() == []
    assert da.counts(log) == {"a": 1, "gate": 2, "b": 1}
