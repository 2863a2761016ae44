"""`python -m benchmarks.concurrency` (or `python -m benchmarks --concurrency`): every goal ratio
of issue 14 in one run.

1. **Throughput**: route (1 agent) and collaborative (4 agents) with agents that await 50 ms, at
   32, 256 and 1,024 concurrent dispatches. Each round fires all N at once and waits for every
   one: dispatches per second = N / wall time of the round, and how many failed. Four systems,
   alternating round by round so they share the machine's moments: actorflow with *default*
   settings, actorflow *tuned* (`[agents.X] max_concurrency = 1000`, Ray's own async default,
   as the raw-Ray agents have), **raw Ray direct** (the caller calls the agent actors itself)
   and the **raw-Ray supervisor** (one async actor between caller and agents, actorflow's shape).
2. **No-op route latency**: one dispatch at a time, agents returning at once, actorflow
   (defaults) and the raw-Ray supervisor interleaved: p50 of each.
3. **CPU per dispatch**: the same no-op route dispatches, 32 in flight, in alternating rounds:
   CPU time (user + system, from /proc) of the supervisor process, the agent process and this
   driver, divided by the dispatches.
4. **Several supervisors** (`--cluster`): a simulated two-node cluster (`ray.cluster_utils`,
   one CPU per node); route at 1,024 with `supervisors = 1` and `supervisors = 2`, alternating,
   with how busy the machine's cores were during each round (/proc/stat).

Medians over `--rounds` rounds (3); a full run takes about 2.5 minutes on 2 cores, `--quick` (one
round, fewer samples) under 2, with ratios too noisy to judge a goal by.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import ray

from benchmarks.measure import latencies, percentile
from benchmarks.raw_ray import RawRay
from benchmarks.shapes import Shape
from benchmarks.workloads import waits

__all__ = ["run", "main", "markdown"]

SLEEP = 0.05
LEVELS = (32, 256, 1024)
TUNED_CONCURRENCY = 1000
"""Messages an agent takes at once when tuned: Ray's default for async actors, as raw Ray has."""
SHAPES = {
    "route": Shape("route", serial=("a0",)),
    "collaborative": Shape("collaborative", parallel=("a0", "a1", "a2", "a3")),
}
SYSTEMS = ("actorflow defaults", "actorflow tuned", "raw Ray direct", "raw Ray supervisor")

Call = Callable[[], Awaitable[Any]]


def run(
    levels: tuple[int, ...] = LEVELS, rounds: int = 3, *, latency_samples: int = 300, cpu_dispatches: int = 3000,
    cluster: bool = True, progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Measure everything; returns the JSON document (see `markdown`)."""
    from benchmarks.harness import _ensure_ray

    owns_ray = _ensure_ray()
    doc: dict[str, Any] = {"levels": list(levels), "rounds": rounds, "agent_sleep_s": SLEEP,
                           "tuned_agent_concurrency": TUNED_CONCURRENCY, "load": {"start": _load()}}
    try:
        doc["throughput"] = {mode: _throughput(SHAPES[mode], levels, rounds, progress) for mode in SHAPES}
        doc["noop_route"] = _noop_route(latency_samples, cpu_dispatches, rounds, progress)
    finally:
        if owns_ray:
            ray.shutdown()
    if cluster and owns_ray:  # a cluster of its own: only when this run owns its Ray
        doc["supervisors"] = _several_supervisors(max(levels), rounds, progress)
    doc["load"]["end"] = _load()
    doc["goals"] = goals(doc)
    return doc


# -- 1. throughput -----------------------------------------------------------------------------


def _runner(shape: Shape, agent_concurrency: int | None = None, supervisors: int = 1) -> Any:
    from actorflow import AgentFlowConfig, Runner

    orchestration: dict[str, Any] = {"mode": shape.mode}
    if shape.parallel:
        orchestration["collaborative_agents"] = list(shape.parallel)
    agents = {name: {"max_concurrency": agent_concurrency} for name in shape.agents} if agent_concurrency else {}
    runner = Runner(AgentFlowConfig.from_dict(
        {"orchestration": orchestration, "agents": agents, "runtime": {"supervisors": supervisors}}))
    for name in shape.agents:
        runner.register_agent(name, waits)
    return runner


def _calls(shape: Shape, defaults: Any, tuned: Any, raw: RawRay, seconds: float) -> dict[str, Callable[[], Call]]:
    from actorflow import Event

    payload = {"seconds": seconds}
    return {
        "actorflow defaults": lambda: defaults.dispatch_async(Event(shape.entry, payload)),
        "actorflow tuned": lambda: tuned.dispatch_async(Event(shape.entry, payload)),
        "raw Ray direct": lambda: raw.direct(shape.mode, dict(payload)),
        "raw Ray supervisor": lambda: raw.dispatch(shape.mode, dict(payload)),
    }


def _throughput(shape: Shape, levels: tuple[int, ...], rounds: int, progress: Callable[[str], None]) -> dict[str, Any]:
    defaults, tuned = _runner(shape), _runner(shape, TUNED_CONCURRENCY)
    defaults.start()
    tuned.start()
    raw = RawRay(waits, [shape], agent_concurrency=TUNED_CONCURRENCY)
    try:
        calls = _calls(shape, defaults, tuned, raw, SLEEP)

        async def measure() -> dict[str, Any]:
            for call in calls.values():  # warm: every process has served a burst
                await _burst(call, 32)
            by_level: dict[str, Any] = {}
            for n in levels:
                seen: dict[str, list[dict[str, Any]]] = {name: [] for name in calls}
                for r in range(rounds):
                    for name, call in calls.items():
                        seen[name].append(await _burst(call, n))
                        progress(f"{shape.mode} n={n} round {r + 1}/{rounds} {name}: "
                                 f"{seen[name][-1]['per_s']:.0f}/s, {seen[name][-1]['errors']} errors")
                systems = {name: _median(rs) for name, rs in seen.items()}
                by_level[str(n)] = {"systems": systems, "load": _load(), **_ratios(systems)}
            return by_level

        return asyncio.run(measure())
    finally:
        defaults.stop()
        tuned.stop()
        raw.stop()


async def _burst(call: Callable[[], Call], n: int) -> dict[str, Any]:
    started = time.perf_counter()
    outcomes = await asyncio.gather(*(call() for _ in range(n)), return_exceptions=True)
    wall = time.perf_counter() - started
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    return {"per_s": n / wall, "errors": len(errors), "error_kinds": sorted({type(e).__name__ for e in errors})}


def _median(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "dispatches_per_s": round(statistics.median(r["per_s"] for r in rounds), 1),
        "errors": [r["errors"] for r in rounds],
        "error_kinds": sorted({k for r in rounds for k in r["error_kinds"]}),
    }


def _ratios(systems: dict[str, Any]) -> dict[str, float]:
    rate = {name: row["dispatches_per_s"] for name, row in systems.items()}
    return {
        "defaults_vs_direct": round(rate["actorflow defaults"] / rate["raw Ray direct"], 2),
        "defaults_vs_supervisor": round(rate["actorflow defaults"] / rate["raw Ray supervisor"], 2),
        "tuned_vs_direct": round(rate["actorflow tuned"] / rate["raw Ray direct"], 2),
        "tuned_vs_supervisor": round(rate["actorflow tuned"] / rate["raw Ray supervisor"], 2),
    }


# -- 2 and 3. no-op route: latency and CPU per dispatch ----------------------------------------


def _noop_route(samples: int, dispatches: int, rounds: int, progress: Callable[[str], None]) -> dict[str, Any]:
    shape = SHAPES["route"]
    runner = _runner(shape)
    runner.start()
    raw = RawRay(waits, [shape], agent_concurrency=TUNED_CONCURRENCY)
    try:
        [agent] = runner.agents()
        calls = _calls(shape, runner, runner, raw, 0.0)
        pair = {"actorflow": calls["actorflow defaults"], "raw Ray supervisor": calls["raw Ray supervisor"]}
        pids = {
            "actorflow": {"supervisor": runner.supervisor_pids[0], "agent": agent["pids"][0]},
            "raw Ray supervisor": {"supervisor": raw.supervisor_pid, "agent": raw.pids(shape)[0]},
        }

        async def measure() -> dict[str, Any]:
            seen = await latencies(pair, samples, warmup=10)
            p50 = {name: percentile(values, 50) * 1000 for name, values in seen.items()}
            progress(f"noop route p50: {p50}")
            cpu: dict[str, list[dict[str, float]]] = {name: [] for name in pair}
            for r in range(max(3, rounds)):
                for name, call in pair.items():
                    cpu[name].append(await _cpu_per_dispatch(call, dispatches, pids[name]))
                    progress(f"noop route CPU round {r + 1}: {name} {cpu[name][-1]}")
            return {"p50_ms": {name: round(v, 3) for name, v in p50.items()},
                    "p50_ratio": round(p50["actorflow"] / p50["raw Ray supervisor"], 2),
                    "cpu_us_per_dispatch": {name: _median_fields(rs) for name, rs in cpu.items()},
                    "load": _load()}

        doc = asyncio.run(measure())
        cpu = doc["cpu_us_per_dispatch"]
        doc["supervisor_cpu_ratio"] = round(cpu["actorflow"]["supervisor"] / cpu["raw Ray supervisor"]["supervisor"], 2)
        return doc
    finally:
        runner.stop()
        raw.stop()


async def _cpu_per_dispatch(call: Callable[[], Call], n: int, pids: dict[str, int], concurrency: int = 32) -> dict[str, float]:
    """Microseconds of CPU per dispatch of each process in `pids`, and of this driver, over `n`
    dispatches with `concurrency` in flight."""
    remaining = iter(range(n))

    async def client() -> None:
        for _ in remaining:
            await call()

    before = {name: _cpu_seconds(pid) for name, pid in pids.items()}
    driver = time.process_time()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    used = {name: _cpu_seconds(pid) - before[name] for name, pid in pids.items()}
    used["driver"] = time.process_time() - driver
    return {name: seconds / n * 1e6 for name, seconds in used.items()}


def _median_fields(rounds: list[dict[str, float]]) -> dict[str, float]:
    return {key: round(statistics.median(r[key] for r in rounds), 1) for key in rounds[0]}


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- 4. several supervisors on a two-node cluster ------------------------------------------------


def _several_supervisors(n: int, rounds: int, progress: Callable[[str], None]) -> dict[str, Any]:
    """Route at `n` with one and with two supervisors on a simulated two-node cluster."""
    from ray.cluster_utils import Cluster

    from actorflow.runtime.connect import private_temp_dir

    os.environ["RAY_TMPDIR"] = private_temp_dir()
    os.makedirs(os.environ["RAY_TMPDIR"], exist_ok=True)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False, namespace="actorflow-bench")
    shape = SHAPES["route"]
    runners = {count: _runner(shape, supervisors=count) for count in (1, 2)}
    try:
        for runner in runners.values():
            runner.start()
        calls = {count: _dispatcher(runner, shape.entry) for count, runner in runners.items()}

        async def measure() -> dict[str, Any]:
            for call in calls.values():
                await _burst(call, 64)
            seen: dict[int, list[dict[str, Any]]] = {count: [] for count in calls}
            for r in range(rounds):
                for count, call in calls.items():
                    pids = [pid for pid in runners[count].supervisor_pids if pid]
                    before, busy = [_cpu_seconds(pid) for pid in pids], _busy_jiffies()
                    result = await _burst(call, n)
                    wall = n / result["per_s"]
                    result["supervisor_cores"] = sum(_cpu_seconds(p) - b for p, b in zip(pids, before)) / wall
                    result["machine_busy"] = _busy_fraction(busy, _busy_jiffies())
                    seen[count].append(result)
                    progress(f"cluster n={n} round {r + 1}/{rounds} supervisors={count}: {result}")
            return {
                str(count): {
                    **_median(rs),
                    "supervisor_cores": round(statistics.median(r["supervisor_cores"] for r in rs), 2),
                    "machine_busy": round(statistics.median(r["machine_busy"] for r in rs), 2),
                }
                for count, rs in seen.items()
            }

        systems = asyncio.run(measure())
    finally:
        for runner in runners.values():
            runner.stop()
        ray.shutdown()
        cluster.shutdown()
    ratio = systems["2"]["dispatches_per_s"] / systems["1"]["dispatches_per_s"]
    return {"concurrent": n, "nodes": 2, "cpus_per_node": 1, "cores": os.cpu_count(), "systems": systems,
            "two_vs_one": round(ratio, 2), "load": _load()}


def _dispatcher(runner: Any, agent: str) -> Callable[[], Call]:
    from actorflow import Event

    return lambda: runner.dispatch_async(Event(agent, {"seconds": SLEEP}))


def _busy_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all the machine's cores, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def _busy_fraction(before: tuple[int, int], after: tuple[int, int]) -> float:
    total = after[1] - before[1]
    return (after[0] - before[0]) / total if total else 0.0


def _load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


# -- goals and report ---------------------------------------------------------------------------


def goals(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 14's goals with the measured value and whether each is met."""
    top = str(max(doc["levels"]))
    rows: list[dict[str, Any]] = []
    for mode, by_level in doc["throughput"].items():
        level = by_level.get(top)
        if level is None:
            continue
        errors = sum(level["systems"]["actorflow defaults"]["errors"])
        rows.append({"goal": f"{mode}: errors with defaults at {top}", "value": errors, "target": "0",
                     "met": errors == 0})
        rows.append({"goal": f"{mode}: defaults vs raw Ray direct at {top}", "value": level["defaults_vs_direct"],
                     "target": "≥ 0.5", "met": level["defaults_vs_direct"] >= 0.5})
        rows.append({"goal": f"{mode}: defaults vs raw-Ray supervisor at {top}", "value": level["defaults_vs_supervisor"],
                     "target": "≥ 0.9", "met": level["defaults_vs_supervisor"] >= 0.9})
    noop = doc["noop_route"]
    rows.append({"goal": "no-op route p50 vs raw-Ray supervisor", "value": noop["p50_ratio"], "target": "≤ 1.15",
                 "met": noop["p50_ratio"] <= 1.15})
    rows.append({"goal": "supervisor CPU per dispatch vs raw-Ray supervisor", "value": noop["supervisor_cpu_ratio"],
                 "target": "≤ 1.2", "met": noop["supervisor_cpu_ratio"] <= 1.2})
    if "supervisors" in doc:
        ratio = doc["supervisors"]["two_vs_one"]
        rows.append({"goal": f"supervisors = 2 vs 1 on 2 nodes at {doc['supervisors']['concurrent']}", "value": ratio,
                     "target": "≥ 1.5 where CPU allows", "met": ratio >= 1.5})
    return rows


def markdown(doc: dict[str, Any]) -> str:
    lines = [
        f"Throughput: N concurrent dispatches, agents awaiting {doc['agent_sleep_s'] * 1000:.0f} ms, "
        f"dispatches/s (median of {doc['rounds']} rounds; errors per round in brackets when any)",
        "",
        "| shape | N | actorflow defaults | actorflow tuned | raw Ray direct | raw-Ray supervisor "
        "| defaults ÷ direct | defaults ÷ supervisor | tuned ÷ direct | tuned ÷ supervisor | load avg |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for mode, by_level in doc["throughput"].items():
        for n, level in by_level.items():
            cells = []
            for name in SYSTEMS:
                row = level["systems"][name]
                errors = f" ({row['errors']})" if any(row["errors"]) else ""
                cells.append(f"{row['dispatches_per_s']:.0f}{errors}")
            lines.append(f"| {mode} | {n} | {' | '.join(cells)} | {level['defaults_vs_direct']:.2f} | "
                         f"{level['defaults_vs_supervisor']:.2f} | {level['tuned_vs_direct']:.2f} | "
                         f"{level['tuned_vs_supervisor']:.2f} | {level['load']} |")
    noop = doc["noop_route"]
    cpu = noop["cpu_us_per_dispatch"]
    lines += [
        "",
        f"No-op route, one at a time: p50 actorflow {noop['p50_ms']['actorflow']:.2f} ms, raw-Ray supervisor "
        f"{noop['p50_ms']['raw Ray supervisor']:.2f} ms: {noop['p50_ratio']:.2f}×",
        "",
        "CPU per no-op route dispatch, µs (32 in flight, median of rounds):",
        "",
        "| system | supervisor | agent | driver |",
        "|---|---:|---:|---:|",
        *(f"| {name} | {row['supervisor']:.0f} | {row['agent']:.0f} | {row['driver']:.0f} |" for name, row in cpu.items()),
        "",
        f"supervisor CPU ratio: {noop['supervisor_cpu_ratio']:.2f} (load avg {noop['load']})",
    ]
    if "supervisors" in doc:
        sup = doc["supervisors"]
        lines += [
            "",
            f"Route at {sup['concurrent']} on a simulated {sup['nodes']}-node cluster ({sup['cpus_per_node']} CPU per "
            f"node, {sup['cores']} cores in the machine):",
            "",
            "| supervisors | dispatches/s | errors | supervisor cores busy | machine cores busy |",
            "|---:|---:|---|---:|---:|",
            *(f"| {count} | {row['dispatches_per_s']:.0f} | {row['errors']} | {row['supervisor_cores']:.2f} | "
              f"{row['machine_busy']:.0%} |" for count, row in sup["systems"].items()),
            "",
            f"2 ÷ 1 supervisors: {sup['two_vs_one']:.2f} (load avg {sup['load']})",
        ]
    lines += ["", "| goal | measured | target | met |", "|---|---:|---|---|"]
    lines += [f"| {g['goal']} | {g['value']} | {g['target']} | {'yes' if g['met'] else 'NO'} |" for g in doc["goals"]]
    lines.append(f"\nload average at start {doc['load']['start']}, at end {doc['load']['end']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.concurrency", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one round, fewer samples: a few minutes")
    parser.add_argument("--levels", default=",".join(map(str, LEVELS)), help="concurrent dispatches, comma-separated")
    parser.add_argument("--rounds", type=int, help="rounds per measurement (default 3; 1 with --quick)")
    parser.add_argument("--no-cluster", action="store_true", help="skip the two-node supervisors case")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 3)
    doc = run(tuple(int(n) for n in args.levels.split(",")), rounds,
              latency_samples=60 if args.quick else 300, cpu_dispatches=1000 if args.quick else 3000,
              cluster=not args.no_cluster, progress=lambda line: print(line, file=sys.stderr, flush=True))
    print(markdown(doc))
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
    return 0 if all(g["met"] for g in doc["goals"] if g["goal"].startswith(tuple(SHAPES)) and "errors" in g["goal"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
