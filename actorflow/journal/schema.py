"""The journal's tables, its schema version, and the check made before a database is used.

    actorflow_schema      one row ("actorflow", version): marks the database as a journal
    actorflow_dispatches  one row per event id: the event, status, lease, result, interrupt
    actorflow_steps       one row per finished step of a dispatch, in recording order (`seq`)

Values are JSON text. Times are epoch seconds on the database's clock (`db_now()`), so
runners on several machines sharing one PostgreSQL journal need not agree on the time.

`prepare(connection)` accepts an empty database (and creates the tables) or a journal of
this `SCHEMA_VERSION`; anything else (other tables, no version row, a newer version) is
refused with a `JournalError`, and nothing is written to it.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Double,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    inspect,
    select,
    text,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from actorflow.exceptions import JournalError

__all__ = ["SCHEMA_VERSION", "metadata", "schema_table", "dispatches", "steps", "db_now", "prepare"]

SCHEMA_VERSION = 1
"""The version this code writes; a journal with a higher version is refused (upgrade actorflow)."""

COMPONENT = "actorflow"

metadata = MetaData()

schema_table = Table(
    "actorflow_schema",
    metadata,
    Column("component", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
)

dispatches = Table(
    "actorflow_dispatches",
    metadata,
    # The order dispatches began in (created_at alone ties within the clock's resolution).
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("event_id", String(512), nullable=False, unique=True),
    Column("event", Text, nullable=False),
    Column("settings", Text),
    Column("status", String(16), nullable=False, index=True),
    Column("owner", String(256), index=True),
    Column("lease_until", Double),
    Column("result", Text),
    Column("interrupt", Text),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
)

steps = Table(
    "actorflow_steps",
    metadata,
    # A global sequence keeps the order steps were recorded in, also across concurrent branches.
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("event_id", String(512), ForeignKey("actorflow_dispatches.event_id", ondelete="CASCADE"), nullable=False),
    Column("step", String(512), nullable=False),
    Column("run", Text, nullable=False),
    Column("output", Text),
    UniqueConstraint("event_id", "step", name="actorflow_steps_event_step"),
)


class db_now(FunctionElement):
    """The database's current time in epoch seconds (a float)."""

    type = Double()
    inherit_cache = True


@compiles(db_now, "sqlite")
def _sqlite_now(element, compiler, **kw) -> str:
    return "((julianday('now') - 2440587.5) * 86400.0)"


@compiles(db_now, "postgresql")
def _postgresql_now(element, compiler, **kw) -> str:
    return "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)"


def prepare(connection: Connection, url: str) -> None:
    """Check the database inside the caller's transaction; create the tables if it is empty.

    Raises JournalError (nothing written) for a database that is not a journal or is newer.
    """
    if connection.dialect.name == "postgresql":
        # Two processes opening one empty database at once: one creates, the other then sees it.
        connection.execute(text("SELECT pg_advisory_xact_lock(7403517)"))
    tables = set(inspect(connection).get_table_names())
    if not tables:
        metadata.create_all(connection)
        connection.execute(schema_table.insert().values(component=COMPONENT, version=SCHEMA_VERSION))
        return
    version = None
    if schema_table.name in tables:
        version = connection.execute(
            select(schema_table.c.version).where(schema_table.c.component == COMPONENT)
        ).scalar()
    if version is None:
        listed = ", ".join(sorted(tables)[:5])
        raise JournalError(
            f"journal {url}: the database is not an actorflow journal (it has tables {listed} but no "
            f"actorflow schema version); it was left untouched. Give an empty database or a new file.",
            url=url,
        )
    if version > SCHEMA_VERSION:
        raise JournalError(
            f"journal {url}: schema version {version} was written by a newer actorflow (this one knows "
            f"version {SCHEMA_VERSION}); it was left untouched. Upgrade actorflow to use it.",
            url=url,
        )
    if version < SCHEMA_VERSION:
        raise JournalError(
            f"journal {url}: schema version {version} is older than {SCHEMA_VERSION} and there is no "
            f"upgrade for it; it was left untouched. Use a new journal.",
            url=url,
        )
    missing = {t.name for t in metadata.sorted_tables} - tables
    if missing:
        raise JournalError(
            f"journal {url}: tables {', '.join(sorted(missing))} are missing (a damaged journal); "
            f"it was left untouched. Use a new journal.",
            url=url,
        )
