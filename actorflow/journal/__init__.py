"""The dispatch journal: durable dispatches in SQLite or PostgreSQL (see `store` and `schema`)."""

from actorflow.journal.schema import SCHEMA_VERSION
from actorflow.journal.store import (
    DispatchRecord, DispatchStatus, Journal, StepRecord, absolute_url, open_journal, redact_url,
)

__all__ = ["open_journal", "absolute_url", "redact_url", "Journal", "DispatchRecord", "StepRecord", "DispatchStatus", "SCHEMA_VERSION"]
