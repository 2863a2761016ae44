"""Handlers for the journal's HTTP and CLI tests: each run leaves a line in a ledger file (data
`ledger`), outside every process, so a test counts what ran across restarts."""

from __future__ import annotations

import os
import time

from actorflow.interrupts import Interrupt

APPROVAL_TOML = """
[orchestration]
mode = "sequential"
sequential_agents = ["prepare", "approve", "publish"]
timeout_seconds = 60

[agents.prepare]
handler = "journal_agents:prepare"
[agents.approve]
handler = "journal_agents:approve"
[agents.publish]
handler = "journal_agents:publish"
"""
"""prepare → approve (interrupts until data `approved`) → publish."""


def _note(state, name: str) -> None:
    with open(state.get("ledger"), "a") as ledger:
        ledger.write(f"{name}\n")


def prepare(event, state):
    _note(state, "prepare")
    return {"prepared": True, "amount": state.get("amount", 100)}


def approve(event, state):
    """Interrupts (a person must approve the amount) until data `approved` names who did."""
    _note(state, "approve")
    if not state.get("approved"):
        raise Interrupt("approve the amount?", {"amount": state.get("amount")})
    return {"approved_by": state.get("approved")}


def publish(event, state):
    """Waits while the file named by data `hold` exists (a dispatch that stays running)."""
    hold = state.get("hold")
    deadline = time.monotonic() + 30
    while hold and os.path.exists(hold) and time.monotonic() < deadline:
        time.sleep(0.02)
    _note(state, "publish")
    return {"published": True}


def ledger(path) -> list[str]:
    """The runs a ledger file recorded, in order."""
    return open(path).read().split() if os.path.exists(path) else []
