"""What the journal costs: the same dispatches without a journal, with a SQLite journal and
(when `ACTORFLOW_BENCH_POSTGRES_URL` names a database) with a PostgreSQL one, interleaved in the
same run. A sequential flow of three agents, `noop` (pure overhead: begin, three steps, finish)
and `io` (each agent waits 50 ms).

    python -m benchmarks.journal            # 200 noop and 30 io samples per system
    python -m benchmarks.journal --quick    # 40 and 8

Prints a markdown table: p50 per system, the p50 a journal adds, and the ratio to no journal.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from actorflow import AgentFlowConfig, Event, Runner
from benchmarks.harness import AGENT_CONCURRENCY, _ensure_ray
from benchmarks.measure import latencies, percentile
from benchmarks.workloads import WORKLOADS

__all__ = ["run", "main"]

AGENTS = ("a0", "a1", "a2")
POSTGRES_ENV = "ACTORFLOW_BENCH_POSTGRES_URL"


def _runner(journal: str) -> Runner:
    config = AgentFlowConfig.from_dict({
        "orchestration": {"mode": "sequential", "sequential_agents": list(AGENTS)},
        "agents": {name: {"max_concurrency": AGENT_CONCURRENCY} for name in AGENTS},
    })
    runner = Runner(config, journal=journal or None)
    for name in AGENTS:
        runner.register_agent(name, WORKLOADS["noop"].handler)
    return runner


def run(samples: dict[str, int], warmup: int = 5) -> dict[str, Any]:
    owns_ray = _ensure_ray()
    import ray

    rows: dict[str, Any] = {}
    try:
        with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="af-journal-bench-") as where:
            journals = {"none": "", "sqlite": f"sqlite:///{Path(where) / 'journal.db'}"}
            if os.environ.get(POSTGRES_ENV):
                journals["postgresql"] = os.environ[POSTGRES_ENV]
            runners = {}
            for name, url in journals.items():
                runners[name] = _runner(url).start()
                stack.callback(runners[name].stop)
            for workload in ("noop", "io"):
                payload = WORKLOADS[workload].payload
                calls = {
                    name: lambda runner=runner: runner.dispatch_async(Event(AGENTS[0], payload))
                    for name, runner in runners.items()
                }
                seen = asyncio.run(latencies(calls, samples[workload], warmup))
                p50 = {name: percentile(values, 50) * 1000 for name, values in seen.items()}
                row: dict[str, Any] = {f"{name}_p50_ms": round(value, 3) for name, value in p50.items()}
                for name in journals:
                    if name != "none":
                        row[f"{name}_adds_ms"] = round(p50[name] - p50["none"], 3)
                        row[f"{name}_ratio"] = round(p50[name] / p50["none"], 3)
                rows[workload] = row
                print(f"{workload}: {row}", file=sys.stderr, flush=True)
    finally:
        if owns_ray:
            ray.shutdown()
    return {"samples": samples, "flow": "sequential, 3 agents", "workloads": rows}


def markdown(doc: dict[str, Any]) -> str:
    lines = ["| workload | journal | p50 ms | adds ms | ratio |", "|---|---|---:|---:|---:|"]
    for workload, row in doc["workloads"].items():
        lines.append(f"| {workload} | none | {row['none_p50_ms']:.2f} | | |")
        for name in ("sqlite", "postgresql"):
            if f"{name}_p50_ms" in row:
                lines.append(f"| {workload} | {name} | {row[f'{name}_p50_ms']:.2f} | {row[f'{name}_adds_ms']:+.2f} "
                             f"| {row[f'{name}_ratio']:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.journal", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="40 noop and 8 io samples per system (default 200 and 30)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    doc = run({"noop": 40, "io": 8} if args.quick else {"noop": 200, "io": 30})
    print(markdown(doc))
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
