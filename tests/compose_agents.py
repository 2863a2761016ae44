"""Handlers of the composition tests (importable by agent actors)."""

from __future__ import annotations

import os
import time
from pathlib import Path


def writes(**values):
    """Writes `values` into a fresh dict output (the untouched input keys stay as they were)."""

    def handler(event, state):
        return dict(values)

    handler.__name__ = "writes_" + "_".join(values)
    return handler


def counts_runs(directory):
    """Appends its agent's name to a file per run (proves whether an agent ran at all)."""

    def handler(event, state):
        with open(Path(directory) / "ran", "a") as fp:
            fp.write(state.get_meta("who", "?") + "\n")
        return {"counted": True}

    return handler


def sleeps_then_touches(event, state):
    """Reports its pid in the file `pidfile`, sleeps `slow`, then creates the file `marker`."""
    Path(event.data["pidfile"]).write_text(str(os.getpid()))
    time.sleep(float(event.data.get("slow", 3)))
    Path(event.data["marker"]).write_text("late")
    return {"slow_done": True}


def quick(name):
    def handler(event, state):
        time.sleep(float(event.data.get("quick_delay", 0)))
        return {name: True}

    handler.__name__ = f"quick_{name}"
    return handler


def fails(event, state):
    raise ValueError("no")


def routes_to(name, next_agent):
    """Tags its run in `trail` and sets meta route to `next_agent` (None: leaves route as it is)."""

    def handler(event, state):
        state.set("trail", [*state.get("trail", []), name])
        if next_agent:
            state.set_meta("route", next_agent)
        return state

    handler.__name__ = f"routes_{name}"
    return handler


def _tagger(name):
    def handler(event, state):
        state.set("trail", [*state.get("trail", []), name])
        state.set(f"{name}_parent", event.metadata.get("parent_event_id"))
        state.set(f"{name}_session", event.session_id)
        return state

    handler.__name__ = f"tagger_{name}"
    return handler


prep, final, x, y = _tagger("prep"), _tagger("final"), _tagger("x"), _tagger("y")
