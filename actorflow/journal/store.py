"""The dispatch journal: `open_journal(url)` and the `Journal` it returns.

A dispatch is a row keyed by its event id, with a status:

    running      a runner works on it; `owner` holds it until `lease_until` (renew() extends)
    interrupted  a handler raised Interrupt; no owner; claim() takes it back for resume
    finished     `result` is final; never claimed again

Each finished step (an agent run) is a row of its own, committed before the call returns.
Leases are compared on the database's clock. A runner whose lease expired (it died, or stopped
renewing) loses the dispatch to the next claim(); writes by event id are not fenced by owner.

Thread safety: use one Journal per process and call it from any thread (e.g. through
`asyncio.to_thread`); every call takes its own pooled connection and transaction. SQLite
journals run in WAL mode with a busy timeout, and write transactions start with
`BEGIN IMMEDIATE`, so several processes on one machine can share one file.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Connection, Double, Engine, and_, bindparam, create_engine, event, exc, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url

from actorflow.exceptions import DispatchNotFoundError, JournalError
from actorflow.journal.schema import db_now, dispatches, prepare, steps

__all__ = ["open_journal", "absolute_url", "redact_url", "Journal", "DispatchRecord", "StepRecord", "DispatchStatus"]

DispatchStatus = Literal["running", "interrupted", "finished"]

SQLITE_BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite write waits for another process's write to finish before failing."""

POSTGRES_CONNECT_TIMEOUT_S = 10
"""How long connecting to PostgreSQL may take (unless the URL sets `connect_timeout`)."""


@dataclass(slots=True)
class StepRecord:
    """One finished step of a dispatch."""

    step: str
    """The step's name, unique within the dispatch (the runtime chooses it)."""
    run: dict
    """What the runtime recorded about the run (agent, timings, status...)."""
    output: dict | None
    """The step's output state, if any."""


@dataclass(slots=True)
class DispatchRecord:
    """A dispatch as the journal holds it."""

    event_id: str
    event: dict
    """The event as dispatched."""
    settings: dict | None
    """Per-dispatch settings (overrides) the runtime needs to resume it."""
    status: DispatchStatus
    owner: str | None
    """The runner holding the lease, or None (released, interrupted, finished)."""
    lease_until: float | None
    """Epoch seconds (database clock) until which `owner` holds it."""
    result: dict | None
    """The final result (finished) or the partial one (interrupted)."""
    interrupt: dict | None
    """The interrupt that stopped it ({"agent", "reason", "payload"}), kept until it finishes."""
    created_at: float
    updated_at: float
    steps: list[StepRecord] = field(default_factory=list)
    """The finished steps in recording order (empty from `unfinished()`)."""

    def step(self, name: str) -> StepRecord | None:
        """The recorded step called `name`, or None."""
        return next((s for s in self.steps if s.step == name), None)


def open_journal(url: str) -> Journal:
    """Open (and on an empty database create) the journal at `url`.

    `sqlite:///relative.db`, `sqlite:////absolute/path.db` or `postgresql://user:pw@host:port/db`.
    Raises JournalError when it cannot be reached or opened, or is not a journal of this
    version; such a database is left untouched.
    """
    parsed, shown = _parse(url)
    engine = _engine(parsed)
    journal = Journal(engine, shown)
    try:
        with journal._errors("open"), journal._write() as conn:
            prepare(conn, shown)
        if parsed.get_backend_name() == "sqlite":
            # Persistent in the file, so only set once the file is known to be a journal;
            # outside any transaction (the driver connection is in autocommit mode).
            with journal._errors("open"), contextlib.closing(engine.raw_connection()) as raw:
                raw.driver_connection.execute("PRAGMA journal_mode=WAL")
    except BaseException:
        engine.dispose()
        raise
    return journal


class Journal:
    """Dispatches and their steps in a SQLite or PostgreSQL database (see the module docstring)."""

    def __init__(self, engine: Engine, url: str) -> None:
        self._engine = engine
        self.url = url
        """The journal's URL with any password hidden."""
        # Built once: constructing an upsert costs more than running it on SQLite.
        insert = (postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert)
        self._begin = (
            insert(dispatches)
            .values(
                status="running",
                lease_until=db_now() + bindparam("lease_seconds", type_=Double()),
                created_at=db_now(),
                updated_at=db_now(),
            )
            .on_conflict_do_nothing(index_elements=["event_id"])
            .returning(dispatches.c.event_id)  # a row only when inserted (rowcount is not portable)
        )
        upsert = insert(steps)
        self._record = upsert.on_conflict_do_update(
            index_elements=["event_id", "step"], set_={"run": upsert.excluded.run, "output": upsert.excluded.output}
        )

    def __repr__(self) -> str:
        return f"Journal({self.url!r})"

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    # -- dispatches --------------------------------------------------------------------------

    def begin(
        self, event_id: str, event: dict, *, settings: dict | None, owner: str, lease_seconds: float
    ) -> tuple[bool, DispatchRecord]:
        """Record a new dispatch as running, held by `owner` for `lease_seconds`.

        Returns (True, record) when this call created it, else (False, the existing record)
        whatever its status: of concurrent calls with one event id exactly one creates it.
        """
        row = {
            "event_id": event_id,
            "event": _dump(event, event_id, "event", self.url),
            "settings": _dump(settings, event_id, "settings", self.url),
            "owner": owner,
            "lease_seconds": lease_seconds,
        }
        with self._errors(f"begin dispatch {event_id!r}"), self._write() as conn:
            created = conn.execute(self._begin, row).first() is not None
            return created, self._load(conn, event_id, with_steps=not created)

    def record_step(self, event_id: str, step: str, run: dict, output: dict | None) -> None:
        """Record a finished step; committed when this returns. Recording it again overwrites it."""
        self.record_steps(event_id, [(step, run, output)])

    def record_steps(self, event_id: str, batch: Iterable[tuple[str, dict, dict | None]]) -> None:
        """Record several finished steps in one transaction."""
        rows = [
            {
                "event_id": event_id,
                "step": step,
                "run": _dump(run, event_id, f"step {step!r} run", self.url),
                "output": _dump(output, event_id, f"step {step!r} output", self.url),
            }
            for step, run, output in batch
        ]
        if not rows:
            return
        with self._errors(f"record steps of {event_id!r}"), self._write() as conn:
            try:
                conn.execute(self._record, rows)
            except exc.IntegrityError as err:
                raise _not_found(event_id) from err
            conn.execute(dispatches.update().where(dispatches.c.event_id == event_id).values(updated_at=db_now()))

    def finish(self, event_id: str, result: dict, *, if_running: bool = False) -> bool:
        """Mark the dispatch finished with its final `result`, and release its lease. With
        `if_running`, only while it is running: False (nothing written) when it is not."""
        values = {"status": "finished", "result": _dump(result, event_id, "result", self.url), "interrupt": None}
        return self._set(event_id, values, "finish", only=("running",) if if_running else None)

    def interrupt(self, event_id: str, result: dict, interrupt: dict) -> None:
        """Mark the dispatch interrupted (partial `result`, the `interrupt`), and release its lease."""
        values = {
            "status": "interrupted",
            "result": _dump(result, event_id, "result", self.url),
            "interrupt": _dump(interrupt, event_id, "interrupt", self.url),
        }
        self._set(event_id, values, "interrupt")

    def claim(self, event_id: str, owner: str, lease_seconds: float) -> DispatchRecord | None:
        """Take an unfinished dispatch for `owner` and mark it running; return it with its steps.

        Claimable: interrupted, or running with no owner, an expired lease, or `owner` itself.
        None when another owner's lease is live, it finished, or the id is unknown.
        """
        c = dispatches.c
        claimable = or_(
            c.status == "interrupted",
            and_(
                c.status == "running",
                or_(c.owner.is_(None), c.owner == owner, c.lease_until.is_(None), c.lease_until <= db_now()),
            ),
        )
        update = (
            dispatches.update()
            .where(c.event_id == event_id, claimable)
            .values(status="running", owner=owner, lease_until=db_now() + lease_seconds, updated_at=db_now())
        )
        with self._errors(f"claim {event_id!r}"), self._write() as conn:
            if conn.execute(update).rowcount != 1:
                return None
            return self._load(conn, event_id, with_steps=True)

    def renew(self, owner: str, lease_seconds: float) -> int:
        """Extend every lease `owner` holds to now + `lease_seconds`; return how many."""
        update = (
            dispatches.update()
            .where(dispatches.c.owner == owner, dispatches.c.status == "running")
            .values(lease_until=db_now() + lease_seconds)
        )
        with self._errors(f"renew leases of {owner!r}"), self._write() as conn:
            return conn.execute(update).rowcount

    def release(self, owner: str) -> None:
        """Drop every lease `owner` holds (a clean stop): its running dispatches become claimable."""
        update = (
            dispatches.update()
            .where(dispatches.c.owner == owner)
            .values(owner=None, lease_until=None, updated_at=db_now())
        )
        with self._errors(f"release leases of {owner!r}"), self._write() as conn:
            conn.execute(update)

    def load(self, event_id: str) -> DispatchRecord | None:
        """The dispatch with its steps in recording order, or None."""
        with self._errors(f"load {event_id!r}"), self._engine.connect() as conn:
            return self._load(conn, event_id, with_steps=True)

    def unfinished(self, statuses: Iterable[str] = ("running", "interrupted")) -> list[DispatchRecord]:
        """Dispatches with one of `statuses`, oldest first, without their steps."""
        query = (
            select(dispatches)
            .where(dispatches.c.status.in_(list(statuses)))
            .order_by(dispatches.c.seq)
        )
        with self._errors("list unfinished dispatches"), self._engine.connect() as conn:
            return [_record(row) for row in conn.execute(query).mappings()]

    # -- internals ---------------------------------------------------------------------------

    def _set(self, event_id: str, values: dict[str, Any], action: str, only: tuple[str, ...] | None = None) -> bool:
        """Update the dispatch (only one with a status in `only`, when given: else False)."""
        where = [dispatches.c.event_id == event_id]
        if only is not None:
            where.append(dispatches.c.status.in_(only))
        update = dispatches.update().where(*where).values(**values, owner=None, lease_until=None, updated_at=db_now())
        with self._errors(f"{action} {event_id!r}"), self._write() as conn:
            if conn.execute(update).rowcount == 1:
                return True
            if only is None or self._load(conn, event_id, with_steps=False) is None:
                raise _not_found(event_id)
            return False

    def _load(self, conn: Connection, event_id: str, *, with_steps: bool) -> DispatchRecord | None:
        row = conn.execute(select(dispatches).where(dispatches.c.event_id == event_id)).mappings().first()
        if row is None:
            return None
        record = _record(row)
        if with_steps:
            query = select(steps).where(steps.c.event_id == event_id).order_by(steps.c.seq)
            record.steps = [
                StepRecord(s["step"], json.loads(s["run"]), _load_json(s["output"]))
                for s in conn.execute(query).mappings()
            ]
        return record

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction (on SQLite: BEGIN IMMEDIATE, so it never has to upgrade a lock)."""
        with self._engine.connect() as conn:
            with conn.execution_options(journal_write=True).begin():
                yield conn

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Database errors become JournalError naming the (redacted) URL and the cause."""
        try:
            yield
        except exc.SQLAlchemyError as err:
            cause = " ".join(str(getattr(err, "orig", None) or err).split())  # one paragraph
            end = "" if cause.endswith((".", "?", "!")) else "."
            raise JournalError(
                f"journal {self.url}: cannot {action}: {cause}{end}{_hint(self.url, cause)}", url=self.url
            ) from err


def absolute_url(url: str) -> str:
    """`url` with a relative SQLite path made absolute (against the current directory), so that
    every process given it (the supervisors, whose working directory may differ) opens the same
    file. Any other URL, or one that does not parse (`open_journal` says why), is returned as is."""
    try:
        parsed = make_url(url)
    except (exc.ArgumentError, ValueError):
        return url
    path = parsed.database
    if parsed.get_backend_name() != "sqlite" or path in (None, "", ":memory:") or path.startswith("file:"):
        return url
    if os.path.isabs(path):
        return url
    return parsed.set(database=os.path.abspath(path)).render_as_string(hide_password=False)


def redact_url(url: str) -> str:
    """`url` with its password hidden (`***`), for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (exc.ArgumentError, ValueError):
        return "(an unparsable URL)"


def _parse(url: str) -> tuple[URL, str]:
    try:
        parsed = make_url(url)
    except (exc.ArgumentError, ValueError) as err:
        raise JournalError(
            f"journal URL {url!r} is not a database URL; use sqlite:///path.db or postgresql://user@host/db",
            url=None,
        ) from err
    shown = parsed.render_as_string(hide_password=True)
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
        try:
            import psycopg  # noqa: F401
        except ImportError as err:
            raise JournalError(
                f"journal {shown}: PostgreSQL needs the psycopg driver; pip install 'actorflow[postgres]'",
                url=shown,
            ) from err
    elif backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise JournalError(
                f"journal {shown}: an in-memory SQLite journal would not survive the process; "
                f"give a file, e.g. sqlite:///journal.db",
                url=shown,
            )
        parsed = parsed.set(drivername="sqlite")
    else:
        raise JournalError(
            f"journal {shown}: unsupported database {backend!r}; use sqlite:///path.db or postgresql://…",
            url=shown,
        )
    return parsed, shown


def _engine(url: URL) -> Engine:
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url)

        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection, _record) -> None:
            # Per connection; none of these writes to the file.
            dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            immediate = conn.get_execution_options().get("journal_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    connect_args = {} if "connect_timeout" in url.query else {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S}
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def _dump(value: Any, event_id: str, what: str, url: str) -> str | None:
    if value is None:
        return None
    try:
        return json.dumps(value, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as err:
        raise JournalError(
            f"journal {url}: dispatch {event_id!r}: the {what} cannot be stored as JSON: {err}",
            url=url,
        ) from err


def _load_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _record(row) -> DispatchRecord:
    return DispatchRecord(
        event_id=row["event_id"],
        event=json.loads(row["event"]),
        settings=_load_json(row["settings"]),
        status=row["status"],
        owner=row["owner"],
        lease_until=row["lease_until"],
        result=_load_json(row["result"]),
        interrupt=_load_json(row["interrupt"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _not_found(event_id: str) -> DispatchNotFoundError:
    return DispatchNotFoundError(f"the journal has no dispatch {event_id!r}", event_id=event_id)


def _hint(url: str, cause: str) -> str:
    lowered = cause.lower()
    if "not a database" in lowered or "malformed" in lowered:
        return " The file is not a SQLite database or is corrupt; it was left untouched. Give a new file."
    if "unable to open" in lowered:
        return " Check that the directory exists and is writable."
    if url.startswith("postgresql") and ("connect" in lowered or "connection" in lowered):
        return " Check that the PostgreSQL server is running at that host and port and accepts this user."
    return ""
