"""Handlers the runtime tests register: small, deterministic, importable by agent actors."""

from __future__ import annotations

import asyncio
import builtins
import os
import signal
import time

from actorflow import Agent, AgentResult


def tag(name):
    """A handler that records that it ran (data `<name>` = True, appended to `trail`)."""

    def handler(event, state):
        state.set(name, True)
        state.set("trail", [*state.get("trail", []), name])
        state.set_meta(f"{name}_pid", os.getpid())
        return state

    handler.__name__ = f"tag_{name}"
    return handler


def returns_dict(event, state):
    return {"from_dict": event.data.get("x", 0) + 1}


def returns_none(event, state):
    return None


def returns_result(event, state):
    out = state.clone()
    out.set("via_result", True)
    return AgentResult(out)


async def async_double(event, state):
    await asyncio.sleep(0)
    return {"value": state.get("value", 1) * 2}


def fails(event, state):
    raise ValueError("bad input for this agent")


def sleeps(event, state):
    time.sleep(float(event.data.get("sleep", 0.2)))
    return {"slept": True}


async def async_sleeps(event, state):
    await asyncio.sleep(float(event.data.get("sleep", 0.2)))
    return {"slept": True}


def writes_key(key, value):
    def handler(event, state):
        state.set(key, value)
        state.set("shared", value)
        return state

    handler.__name__ = f"writes_{key}"
    return handler


def increments(event, state):
    """Loop body: counts up; complete when `count` reaches `until` (if given)."""
    count = state.get("count", 0) + 1
    state.set("count", count)
    until = event.data.get("until")
    if until is not None and count >= until:
        state.set(event.data.get("complete_key", "loop_complete"), True)
    return state


def mutates_input(event, state):
    state.get("shared_list").append("mutated")
    state.set("seen", list(state.get("shared_list")))
    return state


class Counter(Agent):
    """Private state that lives as long as the actor: a per-session count."""

    def __init__(self):
        self.sessions = {}
        self.started = 0

    def on_start(self):
        self.started += 1

    def run(self, event, state):
        self.sessions[event.session_id] = self.sessions.get(event.session_id, 0) + 1
        return {"session_count": self.sessions[event.session_id], "started": self.started, "pid": os.getpid()}


class AsyncEcho(Agent):
    async def run(self, event, state):
        await asyncio.sleep(0)
        return {"echo": dict(event.data)}


class Flaky(Agent):
    """Fails with event data `error` (a builtin exception name) for the first `fail_times` calls."""

    def __init__(self):
        self.calls = 0

    def run(self, event, state):
        self.calls += 1
        if self.calls <= event.data.get("fail_times", 0):
            raise getattr(builtins, event.data.get("error", "ConnectionError"))(f"flaky call {self.calls}")
        return {"calls": self.calls}


class TransientGlitch(ConnectionError):
    """A user exception whose *base class* is retryable."""


def glitches_once(event, state):
    marker = event.data["marker"]
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise TransientGlitch("first call glitches")
    return {"recovered": True}


def switchable(event, state):
    """Fails when event data `fail` is truthy; reports its pid."""
    if event.data.get("fail"):
        raise RuntimeError("asked to fail")
    return {"pid": os.getpid()}


def blocks_until_killed(event, state):
    """Signals it started (creates `started`), then sleeps; reports its pid when it finishes."""
    open(event.data["started"] + f".{os.getpid()}", "w").close()
    time.sleep(float(event.data.get("sleep", 2.0)))
    return {"pid": os.getpid()}


def once(marker: str) -> bool:
    """True for exactly one caller across processes (atomic create)."""
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
        return True
    except FileExistsError:
        return False


class Chaos(Agent):
    """Soak agent: does a little work, or injects the fault the event asks for, once per dispatch.

    data: {"fault": "raise" | "retryable" | "hang" | "kill" | None, "fault_agent": name, "dir": tmp}
    Completes a loop on its third iteration.
    """

    def run(self, event, state):
        fault = event.data.get("fault")
        if fault and event.data.get("fault_agent") == self.name and once(os.path.join(event.data["dir"], event.id)):
            if fault == "raise":
                raise ValueError("injected failure")
            if fault == "retryable":
                raise ConnectionError("injected transient failure")
            if fault == "hang":
                time.sleep(30)
            if fault == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
        state.set(self.name, sum(i * i for i in range(2000)))
        iteration = state.get("iteration", 0) + 1
        state.set("iteration", iteration)
        if iteration >= 3:
            state.set("loop_complete", True)
        return state


def sets(**values):
    """A handler that writes `values` into the data and returns the whole state (untouched keys included)."""

    def handler(event, state):
        for key, value in values.items():
            state.set(key, value)
        return state

    handler.__name__ = "sets_" + "_".join(values)
    return handler


def removes(key):
    def handler(event, state):
        state.pop(key)
        state.set_meta(f"{key}_removed_by", "remover")
        return state

    handler.__name__ = f"removes_{key}"
    return handler


async def async_sleeps_or_fails(event, state):
    """Fails when data `fail` is truthy, else sleeps data `sleep` seconds (async)."""
    if event.data.get("fail"):
        raise RuntimeError("asked to fail")
    await asyncio.sleep(float(event.data.get("sleep", 0)))
    return {"pid": os.getpid()}


def sleeps_reports_pid(event, state):
    time.sleep(float(event.data.get("sleep", 0)))
    return {"pid": os.getpid()}


def waits_for_file(event, state):
    """Returns (with its pid) once the file named by data `release` exists; gives up after 20 s."""
    deadline = time.monotonic() + 20
    while not os.path.exists(event.data["release"]) and time.monotonic() < deadline:
        time.sleep(0.01)
    return {"pid": os.getpid(), "released": os.path.exists(event.data["release"])}


def slow_or_waiting(event, state):
    """blocks_until_killed, or waits_for_file when data `release` is set."""
    return waits_for_file(event, state) if "release" in event.data else blocks_until_killed(event, state)


def returns_non_finite(event, state):
    """Puts values JSON cannot express in the state (NaN, ±infinity)."""
    return {"ratio": float("nan"), "ceiling": float("inf"), "floor": [float("-inf"), 1.5]}


def reports_tracing(event, state):
    """What this agent's process knows of tracing: its pid, whether the OpenTelemetry SDK's
    tracing was imported, whether actorflow set tracing up, and the OTEL_* variables it has."""
    import sys

    from actorflow import tracing

    if event.data.get("fail"):
        raise RuntimeError("asked to fail")
    return {"pid": os.getpid(), "otel_sdk_imported": "opentelemetry.sdk.trace" in sys.modules,
            "traced": tracing.active() is not None,
            "otel_env": sorted(key for key in os.environ if key.startswith("OTEL_"))}
