"""`python -m benchmarks --concurrency`: N concurrent dispatches to one async agent that awaits
50 ms, actorflow with *default* settings against raw Ray with the same async actor, in one run.

Each round fires all N dispatches at once and waits for every one; it reports dispatches per
second (N / wall time of the round) and how many failed. Median of `--rounds` rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import ray

__all__ = ["run", "main"]

SLEEP = 0.05


async def wait_50ms(event: Any, state: Any) -> dict[str, Any]:
    """The I/O-bound agent: awaits 50 ms (an LLM call, an HTTP request)."""
    await asyncio.sleep(SLEEP)
    return {"done": True}


@ray.remote
class _RawAgent:
    """The same agent hand-written in raw Ray (Ray's own async actor default: 1,000 at once)."""

    async def run(self, state: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(SLEEP)
        return {**state, "done": True}


async def _round(call: Any, n: int) -> dict[str, Any]:
    started = time.perf_counter()
    outcomes = await asyncio.gather(*(call(i) for i in range(n)), return_exceptions=True)
    wall = time.perf_counter() - started
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    return {"per_s": n / wall, "errors": len(errors),
            "error_kinds": sorted({type(e).__name__ for e in errors})}


def _median(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "dispatches_per_s": round(statistics.median(r["per_s"] for r in rounds), 1),
        "errors": [r["errors"] for r in rounds],
        "error_kinds": sorted({k for r in rounds for k in r["error_kinds"]}),
    }


def run(n: int = 1024, rounds: int = 3, progress: Any = lambda _: None, supervisors: int = 1) -> dict[str, Any]:
    from actorflow import AgentFlowConfig, Event, Runner
    from benchmarks.harness import _ensure_ray

    owns_ray = _ensure_ray()
    # Every default (no max_concurrency, mailbox_size, timeout set), but for `supervisors`.
    runner = Runner(AgentFlowConfig.from_dict({"runtime": {"supervisors": supervisors}}))
    runner.register_agent("io", wait_50ms)
    runner.start()
    raw = _RawAgent.remote()
    try:
        async def actorflow(i: int) -> Any:
            return await runner.dispatch_async(Event("io", {"i": i}))

        async def raw_ray(i: int) -> Any:
            return await raw.run.remote({"i": i})

        async def measure() -> dict[str, Any]:
            await actorflow(0), await raw_ray(0)  # warm
            results: dict[str, list[dict[str, Any]]] = {"actorflow (defaults)": [], "raw Ray": []}
            for r in range(rounds):  # alternate, so both see the same machine load
                for name, call in (("actorflow (defaults)", actorflow), ("raw Ray", raw_ray)):
                    results[name].append(await _round(call, n))
                    progress(f"round {r + 1}/{rounds} {name}: {results[name][-1]}")
            return {name: _median(rs) for name, rs in results.items()}

        systems = asyncio.run(measure())
    finally:
        runner.stop()
        ray.kill(raw)
        if owns_ray:
            ray.shutdown()
    ratio = systems["actorflow (defaults)"]["dispatches_per_s"] / systems["raw Ray"]["dispatches_per_s"]
    return {"concurrent": n, "agent_sleep_s": SLEEP, "rounds": rounds, "supervisors": supervisors, "systems": systems,
            "actorflow_vs_raw": round(ratio, 2)}


def markdown(doc: dict[str, Any]) -> str:
    lines = [
        f"{doc['concurrent']} concurrent dispatches to one async agent awaiting "
        f"{doc['agent_sleep_s'] * 1000:.0f} ms (median of {doc['rounds']}; supervisors = {doc['supervisors']})",
        "",
        "| system | dispatches/s | errors per round |",
        "| --- | ---: | --- |",
    ]
    for name, row in doc["systems"].items():
        kinds = f" ({', '.join(row['error_kinds'])})" if row["error_kinds"] else ""
        lines.append(f"| {name} | {row['dispatches_per_s']:.0f} | {row['errors']}{kinds} |")
    lines.append(f"\nactorflow / raw Ray: {doc['actorflow_vs_raw']:.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks --concurrency", description=__doc__)
    parser.add_argument("-n", type=int, default=1024, help="concurrent dispatches per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--supervisors", type=int, default=1, help="[runtime] supervisors of the actorflow runner")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    doc = run(args.n, args.rounds, progress=lambda line: print(line, file=sys.stderr, flush=True),
              supervisors=args.supervisors)
    print(markdown(doc))
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
    return 0 if all(not any(r["errors"]) for r in doc["systems"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
