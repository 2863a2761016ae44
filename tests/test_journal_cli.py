"""`actorflow run --journal`, `actorflow resume` and bad journals, through the command's `main()`
on the session's Ray (each call its own runner), a real `actorflow run` process killed mid-dispatch,
and real processes for the set-up errors. A ledger file counts every agent run across them."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from actorflow.cli import main
from conftest import REPO, TESTS
import journal_agents
from journal_agents import ledger

pytestmark = pytest.mark.timeout(240)

# A killed run's dispatch is taken over 2 s after its last lease renewal.
APPROVAL_TOML = "[runtime]\njournal_lease_seconds = 2\n" + journal_agents.APPROVAL_TOML

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(REPO)])}
ENV.pop("RAY_ADDRESS", None)


def actorflow(*argv: str, cwd, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "actorflow", *argv], capture_output=True, text=True,
                          env=ENV, cwd=cwd, timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "approval.toml"
    path.write_text(APPROVAL_TOML)
    return path


@pytest.fixture
def cli(ray_session, capsys):
    """`actorflow ARGV` in this process, on the session's Ray: (exit code, stdout, stderr)."""

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def test_run_interrupts_and_resume_answers_it_exactly_once(cli, config, journal_url, tmp_path):
    data = json.dumps({"ledger": str(tmp_path / "ledger"), "amount": 42})

    def af(*argv: str) -> tuple[int, str, str]:
        return cli(*argv, "--journal", journal_url)

    code, out, err = af("run", str(config), "--event-id", "order-1", "--data", data, "--json")
    paused = json.loads(out)
    assert code == 0 and paused["interrupted"] is True and paused["event_id"] == "order-1", err
    assert paused["interrupt"] == {"agent": "approve", "reason": "approve the amount?", "payload": {"amount": 42}}
    assert "actorflow resume" in err and "--event-id order-1" in err

    code, out, err = af("resume", str(config), "--event-id", "order-1", "--data", '{"approved": "ada"}', "--json")
    done = json.loads(out)
    assert code == 0 and done["ok"] is True and done["state"]["data"]["approved_by"] == "ada", err
    assert ledger(tmp_path / "ledger") == ["prepare", "approve", "approve", "publish"]

    # The same event id again: the recorded result, nothing runs.
    code, out, err = af("run", str(config), "--event-id", "order-1", "--data", data, "--json")
    assert code == 0 and json.loads(out)["state"] == done["state"], err
    code, out, err = af("resume", str(config), "--event-id", "order-1", "--data", '{"approved": "bob"}')
    assert code == 1 and "'order-1' cannot be resumed: it is finished" in err
    code, out, err = af("resume", str(config), "--event-id", "no-such-id")
    assert code == 1 and "has no dispatch 'no-such-id'" in err
    assert ledger(tmp_path / "ledger") == ["prepare", "approve", "approve", "publish"]


def test_resume_without_an_id_finishes_a_killed_run_and_lists_the_interrupted(cli, config, tmp_path):
    """A real `actorflow run` process is SIGKILLed mid-dispatch; `resume` (here, on the session's
    Ray) takes its dispatch over once the lease expired."""
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    paused = tmp_path / "paused-ledger"
    code, out, err = cli("run", str(config), "--journal", url, "--event-id", "paused", "--data",
                         json.dumps({"ledger": str(paused)}), "--json")
    assert code == 0 and json.loads(out)["interrupted"] is True, err

    killed, hold = tmp_path / "killed-ledger", tmp_path / "hold"
    hold.touch()
    data = json.dumps({"ledger": str(killed), "approved": "ada", "hold": str(hold)})
    victim = subprocess.Popen(
        [sys.executable, "-m", "actorflow", "run", str(config), "--journal", url, "--event-id", "killed",
         "--data", data, "--json"],
        env=ENV, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while ledger(killed) != ["prepare", "approve"]:  # publish is holding
            assert victim.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)  # polling a file another process writes: nothing to wait on
    finally:
        kill_tree(victim.pid)  # the CLI and the whole Ray it started, mid-dispatch
        victim.wait()
        shutil.rmtree(f"/tmp/af-{victim.pid}", ignore_errors=True)  # that Ray's temp dir
    hold.unlink()  # only now: no process of the killed run is left to finish it

    code, out, err = cli("resume", str(config), "--journal", url, "--json")
    assert code == 0, err
    results = {r["event_id"]: r for r in map(json.loads, out.splitlines())}
    assert results["killed"]["ok"] is True and results["killed"]["state"]["data"]["published"] is True
    assert results["paused"]["interrupted"] is True  # waits for a person: listed, not rerun
    assert "--event-id paused" in err
    assert ledger(killed) == ["prepare", "approve", "publish"]  # finished runs were not repeated
    assert ledger(paused) == ["prepare", "approve"]


def kill_tree(root: int) -> None:
    """SIGKILL `root` and every process descended from it. All are stopped first, so none
    starts another (a raylet its workers) or finishes its work while the others die."""
    doomed: set[int] = set()
    for _ in range(3):  # stopping is not atomic: look again for children started meanwhile
        tree = _descendants(root) | {root}
        for pid in tree - doomed:
            _signal(pid, signal.SIGSTOP)
        doomed |= tree
    for pid in doomed:
        _signal(pid, signal.SIGKILL)


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        try:
            stat = open(f"/proc/{entry}/stat").read()
        except (OSError, ValueError):
            continue
        if entry.isdigit():
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry))
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def test_bad_journals_are_set_up_errors_that_start_nothing(config, tmp_path):
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"not a database at all" * 100)
    before = corrupt.read_bytes()
    other = tmp_path / "other.toml"
    other.write_text(config.read_text())
    cases = [
        (["run", str(config), "--journal", f"sqlite:///{corrupt}"], "not a database"),
        (["resume", str(config), "--journal", f"sqlite:///{corrupt}"], "not a database"),
        (["resume", str(config), "--journal", "postgresql://af:hunter2pw@127.0.0.1:9/x"], "Connection refused"),
        (["run", str(config), "--journal", "mysql://u@h/db"], "unsupported database"),
        (["serve", str(config), "--journal", f"sqlite:///{corrupt}"], "not a database"),
        (["serve", str(config), str(other), "--journal", f"sqlite:///{tmp_path / 'j.db'}"], "one flow"),
        (["resume", str(config)], "resume needs a journal"),
        (["resume", str(config), "--journal", f"sqlite:///{tmp_path / 'j.db'}", "--data", "{}"], "--event-id"),
    ]
    for argv, says in cases:
        done = actorflow(*argv, cwd=tmp_path, timeout=60)
        assert done.returncode == 2 and says in done.stderr, (argv, done.stderr)
        assert done.stdout == "" and len(done.stderr.strip().splitlines()) == 1, done.stderr  # one paragraph
        assert "hunter2pw" not in done.stderr and "Traceback" not in done.stderr
    assert corrupt.read_bytes() == before
