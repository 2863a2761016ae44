"""The default limits, in one place, chosen to agree with each other (README "Default limits").

A dispatch calls one agent at most once at a time, so one supervisor never has more calls
pending on one agent actor than it has dispatches in flight: with the mailbox at least the
supervisor's in-flight cap, a default mailbox never fills before the supervisor does. Each
supervisor has its own actor handles, and Ray counts `max_pending_calls` per handle, so this
holds with several supervisors too. Dispatches past the cap wait in the supervisor actor's
queue (no error).

The dispatch deadline (`[orchestration] timeout_seconds`, 30 s) covers a full default mailbox
of 50 ms calls to one async replica: 10,000 / 100 at once × 50 ms = 5 s. A synchronous
handler takes one call at a time, so its queue drains 100 times slower: give it `replicas`
(or make it async) before sending it thousands of dispatches at once.

Importing this module does not import Ray (the config schema reads it).
"""

from __future__ import annotations

__all__ = ["ASYNC_AGENT_CONCURRENCY", "SYNC_AGENT_CONCURRENCY", "SUPERVISOR_IN_FLIGHT", "MAILBOX_SIZE",
           "DISPATCH_TIMEOUT_SECONDS"]

SYNC_AGENT_CONCURRENCY = 1
"""Messages a synchronous handler's replica takes at once when `max_concurrency` is unset."""
ASYNC_AGENT_CONCURRENCY = 100
"""Messages an async handler's or LLM agent's replica takes at once when `max_concurrency` is unset."""
SUPERVISOR_IN_FLIGHT = 10_000
"""Dispatches one supervisor actor runs at once (its Ray `max_concurrency`)."""
MAILBOX_SIZE = SUPERVISOR_IN_FLIGHT
"""Default `[agents.NAME] mailbox_size`: pending calls per agent actor per supervisor."""
DISPATCH_TIMEOUT_SECONDS = 30.0
"""Default `[orchestration] timeout_seconds`."""
