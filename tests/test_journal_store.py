"""The journal store on SQLite and on a real PostgreSQL server (tests/pg.py): dispatches, steps,
leases, and the databases it refuses (left untouched)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from actorflow.exceptions import DispatchNotFoundError, JournalError
from actorflow.journal import SCHEMA_VERSION, DispatchRecord, StepRecord, open_journal

pytestmark = pytest.mark.timeout(60)

_ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


@pytest.fixture
def journal(journal_url):
    journal = open_journal(journal_url)
    yield journal
    journal.close()


def test_a_dispatch_round_trips_with_its_steps_in_recording_order(journal, journal_url):
    created, record = journal.begin("e1", {"data": {"q": "ü"}}, settings={"timeout": 5}, owner="r1", lease_seconds=60)
    assert created and record.status == "running" and record.owner == "r1" and record.steps == []
    assert record.lease_until == pytest.approx(record.created_at + 60, abs=1)
    journal.record_step("e1", "b", {"agent": "b"}, {"x": 1})
    journal.record_steps("e1", [("a", {"agent": "a"}, None), ("c", {"agent": "c"}, {"y": [1, 2]})])
    journal.record_step("e1", "b", {"agent": "b", "again": True}, {"x": 2})  # overwrite, not a duplicate
    journal.finish("e1", {"status": "ok"})
    journal.close()

    reopened = open_journal(journal_url)  # durable: a new engine (as a new process) sees it all
    try:
        loaded = reopened.load("e1")
    finally:
        reopened.close()
    assert isinstance(loaded, DispatchRecord)
    assert (loaded.event, loaded.settings, loaded.status, loaded.result) == (
        {"data": {"q": "ü"}}, {"timeout": 5}, "finished", {"status": "ok"})
    assert (loaded.owner, loaded.lease_until, loaded.interrupt) == (None, None, None)
    assert [s.step for s in loaded.steps] == ["b", "a", "c"]
    assert loaded.step("b") == StepRecord("b", {"agent": "b", "again": True}, {"x": 2})
    assert loaded.step("a").output is None and loaded.step("zzz") is None
    assert loaded.updated_at >= loaded.created_at


def test_begin_again_returns_the_existing_record_whatever_its_status(journal):
    journal.begin("e1", {"n": 1}, settings=None, owner="r1", lease_seconds=60)
    journal.record_step("e1", "a", {}, {"v": 1})
    journal.finish("e1", {"done": True})
    created, record = journal.begin("e1", {"n": 2}, settings=None, owner="r2", lease_seconds=60)
    assert not created
    assert (record.event, record.status, record.result, record.owner) == ({"n": 1}, "finished", {"done": True}, None)
    assert [s.step for s in record.steps] == ["a"]
    assert journal.load("unknown") is None


def test_concurrent_begins_of_one_id_create_it_exactly_once(journal, journal_url):
    other = open_journal(journal_url)  # a second engine: separate connections, like another runner
    threads, ids = 8, [f"e{i}" for i in range(10)]
    barrier = threading.Barrier(threads)
    outcomes: list[tuple[str, str, bool, str]] = []
    errors: list[BaseException] = []

    def runner(index: int) -> None:
        store = (journal, other)[index % 2]
        try:
            for event_id in ids:
                barrier.wait()
                created, record = store.begin(event_id, {}, settings=None, owner=f"o{index}", lease_seconds=60)
                outcomes.append((event_id, f"o{index}", created, record.owner))
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)
            barrier.abort()

    workers = [threading.Thread(target=runner, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    other.close()
    assert errors == []
    for event_id in ids:
        mine = [o for o in outcomes if o[0] == event_id]
        winners = [owner for _, owner, created, _ in mine if created]
        assert len(mine) == threads and len(winners) == 1
        assert {seen for *_, seen in mine} == set(winners)  # everyone sees the winner as owner


def test_claim_takes_expired_released_or_interrupted_dispatches_only(journal):
    journal.begin("live", {}, settings=None, owner="a", lease_seconds=600)
    journal.begin("expired", {}, settings=None, owner="a", lease_seconds=0)
    journal.begin("paused", {}, settings=None, owner="a", lease_seconds=600)
    journal.record_step("paused", "s1", {"agent": "s1"}, {"k": 1})
    journal.interrupt("paused", {"partial": True}, {"agent": "s2", "reason": "approve?", "payload": None})
    journal.begin("done", {}, settings=None, owner="a", lease_seconds=600)
    journal.finish("done", {})

    assert journal.claim("live", "b", 60) is None  # another live owner holds it
    again = journal.claim("live", "a", 60)  # its own owner may claim it again
    assert again is not None and again.owner == "a"
    taken = journal.claim("expired", "b", 60)
    assert taken is not None and (taken.owner, taken.status) == ("b", "running")
    assert journal.claim("expired", "a", 60) is None  # now b's, live
    resumed = journal.claim("paused", "b", 60)
    assert (resumed.status, resumed.owner, resumed.result) == ("running", "b", {"partial": True})
    assert resumed.interrupt == {"agent": "s2", "reason": "approve?", "payload": None}
    assert [s.step for s in resumed.steps] == ["s1"]
    assert journal.claim("done", "b", 60) is None
    assert journal.claim("unknown", "b", 60) is None


def test_renew_extends_every_lease_of_an_owner_and_release_drops_them(journal):
    for event_id in ("e1", "e2"):
        journal.begin(event_id, {}, settings=None, owner="a", lease_seconds=0)
    journal.begin("e3", {}, settings=None, owner="c", lease_seconds=0)
    assert journal.renew("a", 600) == 2
    assert journal.renew("nobody", 600) == 0
    assert journal.claim("e1", "b", 60) is None  # renewed: live again
    assert journal.claim("e3", "b", 60) is not None  # not renewed: expired
    record = journal.load("e2")
    assert record.lease_until == pytest.approx(record.created_at + 600, abs=5)

    journal.release("a")
    released = journal.load("e1")
    assert (released.status, released.owner, released.lease_until) == ("running", None, None)
    assert journal.claim("e1", "b", 60).owner == "b"


def test_unfinished_lists_running_and_interrupted_oldest_first_without_steps(journal):
    for event_id in ("first", "second", "third", "fourth"):
        journal.begin(event_id, {"id": event_id}, settings=None, owner="a", lease_seconds=60)
        journal.record_step(event_id, "s", {}, None)
    journal.finish("second", {})
    journal.interrupt("third", {}, {"agent": "x", "reason": "r", "payload": {"p": 1}})
    listed = journal.unfinished()
    assert [r.event_id for r in listed] == ["first", "third", "fourth"]
    assert [r.status for r in listed] == ["running", "interrupted", "running"]
    assert all(r.steps == [] for r in listed)
    assert [r.event_id for r in journal.unfinished(statuses=("interrupted",))] == ["third"]
    assert [r.event_id for r in journal.unfinished(statuses=("finished",))] == ["second"]


def test_values_that_are_not_json_are_refused_naming_the_field(journal):
    with pytest.raises(JournalError, match=r"dispatch 'e1': the event"):
        journal.begin("e1", {"when": object()}, settings=None, owner="a", lease_seconds=60)
    assert journal.load("e1") is None
    journal.begin("e1", {}, settings=None, owner="a", lease_seconds=60)
    with pytest.raises(JournalError, match=r"dispatch 'e1': the step 'bad' output .*not JSON compliant"):
        journal.record_step("e1", "bad", {}, {"x": float("nan")})
    with pytest.raises(JournalError, match=r"dispatch 'e1': the result"):
        journal.finish("e1", {"s": {1, 2}})
    assert journal.load("e1").steps == [] and journal.load("e1").status == "running"


def test_writes_for_an_unknown_dispatch_raise_not_found(journal):
    with pytest.raises(DispatchNotFoundError, match="'ghost'"):
        journal.record_step("ghost", "s", {}, None)
    with pytest.raises(DispatchNotFoundError):
        journal.finish("ghost", {})
    with pytest.raises(DispatchNotFoundError):
        journal.finish("ghost", {}, if_running=True)
    with pytest.raises(DispatchNotFoundError):
        journal.interrupt("ghost", {}, {})


def test_finish_if_running_never_overwrites_an_end(journal):
    journal.begin("e1", {}, settings=None, owner="r1", lease_seconds=60)
    assert journal.finish("e1", {"first": True}, if_running=True)
    assert not journal.finish("e1", {"second": True}, if_running=True)
    assert journal.load("e1").result == {"first": True}


# -- databases the journal refuses, and leaves as they were -------------------------------------


def test_a_corrupt_sqlite_file_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "journal.db"
    garbage = b"this is not a database\x00" * 300
    path.write_bytes(garbage)
    with pytest.raises(JournalError, match=r"(?s)journal sqlite:///.*journal\.db.*not a database.*left untouched"):
        open_journal(f"sqlite:///{path}")
    assert path.read_bytes() == garbage
    assert sorted(p.name for p in tmp_path.iterdir()) == ["journal.db"]


def test_a_sqlite_database_with_other_tables_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO users (name) VALUES ('ada')")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(JournalError, match=r"not an actorflow journal \(it has tables users"):
        open_journal(f"sqlite:///{path}")
    assert path.read_bytes() == before


def test_a_sqlite_journal_of_a_newer_version_is_refused_and_left_untouched(tmp_path):
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    open_journal(url).close()
    with sqlite3.connect(tmp_path / "journal.db") as conn:
        conn.execute("UPDATE actorflow_schema SET version = ?", (SCHEMA_VERSION + 1,))
    conn.close()
    before = (tmp_path / "journal.db").read_bytes()
    with pytest.raises(JournalError, match=rf"schema version {SCHEMA_VERSION + 1} was written by a newer actorflow.*Upgrade"):
        open_journal(url)
    assert (tmp_path / "journal.db").read_bytes() == before


def test_a_sqlite_file_in_a_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(JournalError, match=r"unable to open database file.*directory exists"):
        open_journal(f"sqlite:///{tmp_path / 'no' / 'such' / 'journal.db'}")
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize(
    "url, message",
    [
        ("sqlite://", "in-memory"),
        ("mysql://u@h/db", "unsupported database 'mysql'"),
        ("not a url", "is not a database URL"),
    ],
)
def test_urls_that_cannot_be_journals_are_refused(url, message):
    with pytest.raises(JournalError, match=message):
        open_journal(url)


def _pg_tables(url: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1"
        ).fetchall()


def test_a_postgres_database_with_other_tables_is_refused_and_left_untouched(new_postgres_database):
    import psycopg

    url = new_postgres_database()
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE orders (id serial PRIMARY KEY)")
    with pytest.raises(JournalError, match=r"not an actorflow journal \(it has tables orders"):
        open_journal(url)
    assert _pg_tables(url) == [("orders",)]


def test_a_postgres_journal_of_a_newer_version_is_refused_and_left_untouched(new_postgres_database):
    import psycopg

    url = new_postgres_database()
    journal = open_journal(url)
    journal.begin("e1", {}, settings=None, owner="a", lease_seconds=60)
    journal.close()
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE actorflow_schema SET version = %s", (SCHEMA_VERSION + 7,))
    tables = _pg_tables(url)
    with pytest.raises(JournalError, match=rf"schema version {SCHEMA_VERSION + 7} was written by a newer actorflow"):
        open_journal(url)
    assert _pg_tables(url) == tables
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT event_id FROM actorflow_dispatches").fetchall() == [("e1",)]


def test_passwords_never_show_in_the_journal_or_its_errors(new_postgres_database):
    from pg import _free_port

    url = new_postgres_database().replace("actorflow@", "actorflow:s3cr3t-pw@")
    journal = open_journal(url)  # trust authentication accepts any password
    try:
        assert "s3cr3t" not in str(journal) and "s3cr3t" not in repr(journal) and "s3cr3t" not in journal.url
        assert journal.url.startswith("postgresql://actorflow:***@127.0.0.1:")
    finally:
        journal.close()

    closed = f"postgresql://actorflow:s3cr3t-pw@127.0.0.1:{_free_port()}/nothing"
    with pytest.raises(JournalError) as caught:
        open_journal(closed)
    message = str(caught.value)
    assert "s3cr3t" not in message and "s3cr3t" not in str(caught.value.url)
    assert "postgresql://actorflow:***@127.0.0.1" in message
    assert "Check that the PostgreSQL server is running" in message


_WRITER = """
import sys
from actorflow.journal import open_journal
journal = open_journal(sys.argv[1])
name, created = sys.argv[2], 0
for i in range(40):
    made, _ = journal.begin(f"e{i}", {}, settings=None, owner=name, lease_seconds=60)
    created += made
    journal.record_step(f"e{i}", name, {"by": name}, {"i": i})
journal.close()
print(created)
"""


def test_processes_sharing_one_sqlite_file_neither_lose_nor_duplicate_writes(tmp_path):
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, url, f"p{n}"], stdout=subprocess.PIPE, text=True, env=_ENV)
        for n in range(3)
    ]
    created = [int(w.communicate(timeout=50)[0]) for w in writers]
    assert [w.returncode for w in writers] == [0, 0, 0]
    assert sum(created) == 40  # each id began exactly once, by whichever process came first
    journal = open_journal(url)
    try:
        for i in range(40):
            assert sorted(s.step for s in journal.load(f"e{i}").steps) == ["p0", "p1", "p2"]
    finally:
        journal.close()
