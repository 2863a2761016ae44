"""The dispatch journal: durable dispatches in SQLite or PostgreSQL (see `store` and `schema`)."""

from actorflow.journal.schema import SCHEMA_VERSION
from actorflow.journal.store import DispatchRecord, DispatchStatus, Journal, StepRecord, open_journal

__all__ = ["open_journal", "Journal", "DispatchRecord", "StepRecord", "DispatchStatus", "SCHEMA_VERSION"]
