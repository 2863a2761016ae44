"""Handlers the runtime tests register: small, deterministic, importable by agent actors."""

from __future__ import annotations

import asyncio
import os
import time

from actorflow import Agent, AgentResult, State


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
