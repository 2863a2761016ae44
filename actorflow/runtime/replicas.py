"""What Ray knows about an agent's actors right now: each replica's process id and restarts.

Read from the GCS actor table (one lookup per replica; no call to the actor, so it costs no
mailbox slot and does not wait behind a busy handler). The actor table is a Ray developer API
(`ray._private.state.actors`); if it is unavailable, the process ids seen at start are kept
and restarts are unknown (None).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

__all__ = ["ReplicaProcess", "replica_processes"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReplicaProcess:
    """One replica's actor as the GCS sees it."""

    pid: int | None
    """Process id of the live actor; None while it is restarting or dead."""
    restarts: int | None
    """Times Ray restarted it (None: unknown)."""
    state: str
    """ALIVE, RESTARTING, DEAD, PENDING_CREATION, … (UNKNOWN if the table could not be read)."""


def replica_processes(actors: list[Any], started_pids: list[int]) -> list[ReplicaProcess]:
    """The current process of each actor handle in `actors` (blocking: call off an event loop)."""
    try:
        from ray._private.state import actors as actor_table

        rows = [actor_table(actor_id=actor._actor_id.hex()) for actor in actors]
    except Exception as err:  # the developer API moved or the GCS is unreachable
        logger.debug("cannot read the GCS actor table: %s", err)
        return [ReplicaProcess(pid, None, "UNKNOWN") for pid in started_pids]
    out = []
    for row in rows:
        state = row.get("State", "UNKNOWN")
        pid = row.get("Pid") if state == "ALIVE" else None
        out.append(ReplicaProcess(pid or None, row.get("NumRestarts"), state))
    return out
