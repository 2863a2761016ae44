"""`python -m benchmarks.messages`: what the values that cross actors cost to pickle.

Each row is one cloudpickle `dumps` + `loads` round trip (what Ray does to an argument or a
return value), in µs (the best of 9 runs of `timeit`: the least disturbed by other load), and the pickled size in bytes. The
payload is a small state: 5 keys of short strings and numbers, like a routed request's.
"""

from __future__ import annotations

import argparse
import timeit
from typing import Any

from ray import cloudpickle

from actorflow.events import AgentResult, AgentRun, DispatchResult, Event, State
from actorflow.runtime.supervisor import DispatchOutcome

__all__ = ["samples", "measure", "main"]

DATA = {"query": "what is the weather in Paris", "user": "u-1234", "count": 3, "score": 0.5, "tags": ["a", "b"]}


def samples() -> dict[str, Any]:
    event = Event("agent", DATA, metadata={"trace": "t-1"})
    state = State(DATA, {"trace": "t-1"})
    result = AgentResult(State(DATA), duration=0.05)
    runs = [AgentRun("agent", "ok", 0.05), AgentRun("other", "ok", 0.04, attempt=2)]
    dispatch = DispatchResult(state, "route", event.id, event.session_id, 0.06, runs)
    return {
        "dict (the floor)": dict(DATA),
        "Event": event,
        "State": state,
        "(Event, State) message": (event, state),
        "AgentResult": result,
        "AgentRun": runs[0],
        "DispatchResult (2 runs)": dispatch,
        "DispatchOutcome": DispatchOutcome(dispatch),
    }


def measure(number: int = 2000) -> dict[str, tuple[float, int]]:
    rows = {}
    for name, value in samples().items():
        def trip(value: Any = value) -> Any:
            return cloudpickle.loads(cloudpickle.dumps(value))

        assert trip() == value or name == "DispatchOutcome"
        times = timeit.repeat(trip, number=number, repeat=9)
        rows[name] = (min(times) / number * 1e6, len(cloudpickle.dumps(value)))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.messages", description=__doc__)
    parser.add_argument("--number", type=int, default=2000)
    args = parser.parse_args(argv)
    print("| value | µs per round trip | bytes |\n|---|---:|---:|")
    for name, (micros, size) in measure(args.number).items():
        print(f"| {name} | {micros:.1f} | {size} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
