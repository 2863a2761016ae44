"""Composition benchmarks: a nested flow's overhead per level, and join="first" latency.

    python -m benchmarks.composition [--samples N]

1. The same no-op agent dispatched flat (route) and behind 1, 2 and 3 levels of nested route
   flows: p50 per depth and (p50(depth) − p50(flat)) / depth, the overhead per level (goal ≤ 1 ms).
2. A collaborative phase of a fast (20 ms) and a slow (500 ms) async agent: p50 with join="all"
   and join="first" (goal: first ≈ the fast agent, not the slow one).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import ray

from actorflow import AgentFlowConfig, Event, Runner, load_config
from actorflow.runtime.connect import private_temp_dir

FAST, SLOW = 0.02, 0.5


async def noop(event, state):
    return None


async def fast(event, state):
    import asyncio

    await asyncio.sleep(FAST)
    return {"fast": True}


async def slow(event, state):
    import asyncio

    await asyncio.sleep(SLOW)
    return {"slow": True}


def _p50(runner: Runner, event: Event, samples: int) -> float:
    for _ in range(5):  # warm-up
        runner.dispatch(event)
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        runner.dispatch(event)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def _nested_files(root: Path, depth: int) -> Path:
    """level0.toml → level1 (flow) → … → leaf agent `noop`."""
    for level in range(depth, -1, -1):
        agent = "noop" if level == depth else "inner"
        body = ('[agents.noop]\nhandler = "benchmarks.composition:noop"\n' if level == depth
                else f'[agents.inner]\nflow = "level{level + 1}.toml"\n')
        (root / f"level{level}.toml").write_text(f'[orchestration]\nmode = "route"\nretry_attempts = 0\n{body}')
        del agent
    return root / "level0.toml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.composition")
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args(argv)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _temp_dir=private_temp_dir())
    try:
        results = {}
        with tempfile.TemporaryDirectory() as tmp:
            for depth in range(0, 4):
                root = Path(tmp) / f"d{depth}"
                root.mkdir()
                with Runner(load_config(_nested_files(root, depth))) as runner:
                    target = "noop" if depth == 0 else "inner"
                    results[depth] = _p50(runner, Event(target), args.samples)
        print("| nesting depth | p50 ms | overhead per level ms |")
        print("|---|---|---|")
        for depth, p50 in results.items():
            per = "" if depth == 0 else f"{(p50 - results[0]) / depth:.3f}"
            print(f"| {depth} | {p50:.3f} | {per} |")
        cfg = AgentFlowConfig.model_validate({"orchestration": {"mode": "collaborative", "retry_attempts": 0,
                                                                "collaborative_agents": ["slow", "fast"]}})
        runner = Runner(cfg)
        runner.register_agent("slow", slow)
        runner.register_agent("fast", fast)
        with runner:
            samples = max(10, args.samples // 10)
            joins = {join: _p50_join(runner, join, samples) for join in ("all", "first")}
        print(f"\n| join | p50 ms (fast agent {FAST * 1000:.0f} ms, slow agent {SLOW * 1000:.0f} ms) |")
        print("|---|---|")
        for join, p50 in joins.items():
            print(f"| {join} | {p50:.1f} |")
    finally:
        ray.shutdown()
    return 0


def _p50_join(runner: Runner, join: str, samples: int) -> float:
    times = []
    for _ in range(samples + 2):
        started = time.perf_counter()
        runner.dispatch(Event("fast"), join=join)
        times.append(time.perf_counter() - started)
    return statistics.median(times[2:]) * 1000


if __name__ == "__main__":
    raise SystemExit(main())
