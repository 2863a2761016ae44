"""Handlers of the interrupt and recovery tests: each run appends its agent's name to the file
named by the state's `log` (side effects counted outside the agent processes)."""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

from actorflow import Interrupt


def _log(state, name: str) -> None:
    with open(state.get("log"), "a") as file:
        file.write(name + "\n")
        file.flush()
        os.fsync(file.fileno())


def counts(path) -> Counter:
    """How many times each agent ran (lines of the side-effect file)."""
    path = Path(path)
    return Counter(path.read_text().split()) if path.exists() else Counter()


def step(name: str):
    """An agent that logs its run and appends its name to data `trail`."""

    def handler(event, state):
        _log(state, name)
        state.set("trail", [*state.get("trail", []), name])
        state.set(name, True)
        return state

    handler.__name__ = f"step_{name}"
    return handler


a, b, c, s1 = step("a"), step("b"), step("c"), step("s1")


def gate(event, state):
    """Interrupts until data `approved` is set; logs every run."""
    _log(state, "gate")
    if not state.get("approved"):
        raise Interrupt("needs approval", {"amount": state.get("amount", 0)})
    state.set("trail", [*state.get("trail", []), "gate"])
    state.set("gate", True)
    return state


def looper(event, state):
    """Loop agent: counts iterations in data `n`; interrupts at n == 2 until approved; done at 3."""
    n = state.get("n", 0) + 1
    _log(state, f"looper{n}")
    if n == 2 and not state.get("approved"):
        raise Interrupt("halfway", {"n": n})
    state.set("n", n)
    if n >= 3:
        state.set("loop_complete", True)
    return state


def _hold(state) -> None:
    """Wait while the file named by data `hold` exists (at most a minute)."""
    deadline = time.monotonic() + 60
    while state.get("hold") and os.path.exists(state.get("hold")) and time.monotonic() < deadline:
        time.sleep(0.05)


def slow(event, state):
    """Logs its start, then holds (the run in flight when the driver is killed)."""
    _log(state, "slow-start")
    _hold(state)
    _log(state, "slow")
    state.set("slow", True)
    return state


def slow_looper(event, state):
    """Loop agent for the crash test: logs `loopN`; iteration 3 holds; done at 4."""
    n = state.get("n", 0) + 1
    _log(state, f"loop{n}")
    if n == 3:
        _hold(state)
    state.set("n", n)
    if n >= 4:
        state.set("loop_complete", True)
    return state


def bad(event, state):
    """Logs its run, then fails."""
    _log(state, "bad")
    raise ValueError("bad agent")


def agent_error(args):
    """AGENT_ERROR callback: logs `{agent}-error` (recovers nothing)."""
    if args.state.get("log"):
        _log(args.state, f"{args.agent_id}-error")
