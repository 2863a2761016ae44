"""Running the benchmark: every pattern × workload on actorflow and, in the same run, on the
raw-Ray floor and LangGraph; the result is the document `--json` writes."""

from __future__ import annotations

import asyncio
import os
import platform
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import ray

from actorflow import AgentFlowConfig, Event, Runner
from actorflow.runtime.connect import private_temp_dir
from benchmarks import langgraph_baseline
from benchmarks.measure import latencies, percentile, rss_mb, throughput
from benchmarks.raw_ray import RawRay
from benchmarks.shapes import MODES, SHAPES, Shape
from benchmarks.workloads import WORKLOADS, Workload

__all__ = ["Settings", "QUICK", "FULL", "run"]

AGENT_CONCURRENCY = 32
"""Messages an agent actor takes at once, in actorflow and raw Ray alike (≥ the client
concurrency, so the c32 numbers measure the orchestration, not a one-message mailbox)."""


@dataclass(frozen=True, slots=True)
class Settings:
    modes: tuple[str, ...] = MODES
    workloads: tuple[str, ...] = tuple(WORKLOADS)
    samples: dict[str, int] = field(default_factory=lambda: {"noop": 300, "io": 40, "cpu": 30})
    """One-at-a-time dispatches per system (after `warmup`), by workload."""
    warmup: int = 3
    concurrency: int = 32
    throughput_seconds: float = 4.0
    """How long new dispatches start in each throughput run (in-flight ones then finish)."""
    raw_ray_cpu_throughput: bool = True
    """Also measure raw Ray's throughput on `cpu` (its slowest part; off in --quick)."""
    langgraph: bool = True


QUICK = Settings(samples={"noop": 40, "io": 5, "cpu": 5}, warmup=1, throughput_seconds=1.0, raw_ray_cpu_throughput=False)
FULL = Settings()

Progress = Callable[[str], None]
Handler = Callable[[Any, Any], Any]


def run(
    settings: Settings = FULL, progress: Progress | None = None, on_case: Callable[[], None] | None = None
) -> dict[str, Any]:
    """Benchmark `settings.modes` × `settings.workloads`; returns the JSON document.

    `on_case` is called after each (mode, workload) case (the CLI's progress bar).
    Uses the Ray already initialised in this process if there is one; otherwise starts a
    private local Ray (no dashboard, its own temp dir) and shuts it down at the end.
    """
    say = progress or (lambda _: None)
    owns_ray = _ensure_ray()
    try:
        cores = len(os.sched_getaffinity(0))
        use_langgraph = settings.langgraph and langgraph_baseline.available()
        shapes = [SHAPES[mode] for mode in settings.modes]
        patterns: dict[str, dict[str, Any]] = {mode: {} for mode in settings.modes}
        for handler, workloads in _by_handler(settings.workloads).items():
            with ExitStack() as stack:
                say(f"{'/'.join(w.name for w in workloads)}: starting {len(shapes)} runners and the raw-Ray actors")
                raw, runners = _start(handler, shapes, stack)
                for shape in shapes:
                    for workload in workloads:
                        row = _bench(shape, workload, runners[shape.mode], raw, settings, cores, use_langgraph)
                        patterns[shape.mode][workload.name] = row
                        say(f"{workload.name}: {shape.mode:<13} p50 {row['p50_ms']:.1f} ms, raw Ray {row['raw_ray_p50_ms']:.1f} ms")
                        if on_case is not None:
                            on_case()
                    runners[shape.mode].stop()
        return {
            "machine": machine(cores),
            "settings": {**asdict(settings), "agent_concurrency": AGENT_CONCURRENCY},
            "langgraph": {"installed": langgraph_baseline.available(), "version": langgraph_baseline.version()},
            "patterns": patterns,
        }
    finally:
        if owns_ray:
            ray.shutdown()


def _by_handler(names: tuple[str, ...]) -> dict[Handler, list[Workload]]:
    """Workloads grouped by agent handler: a group shares one set of actors."""
    groups: dict[Handler, list[Workload]] = {}
    for name in names:
        groups.setdefault(WORKLOADS[name].handler, []).append(WORKLOADS[name])
    return groups


def _start(handler: Handler, shapes: list[Shape], stack: ExitStack) -> tuple[RawRay, dict[str, Runner]]:
    """Start the runners and the raw-Ray actors at once (actor start-up dominates otherwise);
    `stack` stops them all, whatever happens."""
    runners = {shape.mode: _runner(shape, handler) for shape in shapes}
    for runner in runners.values():
        stack.callback(runner.stop)
    with ThreadPoolExecutor(len(runners) + 1) as pool:
        raw = pool.submit(RawRay, handler, shapes, agent_concurrency=AGENT_CONCURRENCY)
        started = [pool.submit(runner.start) for runner in runners.values()]
        for future in [raw, *started]:
            future.exception()  # wait for all before raising, so nothing is left half-started
    stack.enter_context(raw.result())
    for future in started:
        future.result()
    return raw.result(), runners


def _bench(
    shape: Shape, workload: Workload, runner: Runner, raw: RawRay, settings: Settings, cores: int, use_langgraph: bool
) -> dict[str, Any]:
    payload = workload.payload
    calls = {
        "actorflow": lambda: runner.dispatch_async(Event(shape.entry, payload)),
        "raw_ray": lambda: raw.dispatch(shape.mode, dict(payload)),
    }
    if use_langgraph:
        graph = langgraph_baseline.build(shape, workload.handler)
        calls["langgraph"] = lambda: graph.ainvoke({**payload, "runs": 0})
    seen = asyncio.run(latencies(calls, settings.samples[workload.name], settings.warmup))
    c32 = asyncio.run(throughput(calls["actorflow"], settings.concurrency, settings.throughput_seconds))
    raw_c32 = None
    if workload.name != "cpu" or settings.raw_ray_cpu_throughput:
        raw_c32 = asyncio.run(throughput(calls["raw_ray"], settings.concurrency, settings.throughput_seconds))
    pids = [pid for agent in runner.agents() for pid in agent["pids"]]
    rss = rss_mb(pids)
    af, floor, lg = seen["actorflow"], seen["raw_ray"], seen.get("langgraph")
    p50 = percentile(af, 50) * 1000
    raw_p50 = percentile(floor, 50) * 1000
    lg_p50 = percentile(lg, 50) * 1000 if lg else None
    ideal = workload.ideal_ms(shape.groups(), cores)
    raw_rss = rss_mb(raw.pids(shape))
    return _rounded(
        {
            "p50_ms": p50,
            "p99_ms": percentile(af, 99) * 1000,
            "throughput_eps_c1": len(af) / sum(af),
            "throughput_eps_c32": c32,
            "raw_ray_p50_ms": raw_p50,
            "langgraph_p50_ms": lg_p50,
            "ideal_ms": ideal,
            "overhead_ratio_vs_raw_ray": p50 / raw_p50,
            "raw_ray_p99_ms": percentile(floor, 99) * 1000,
            "raw_ray_throughput_eps_c1": len(floor) / sum(floor),
            "raw_ray_throughput_eps_c32": raw_c32,
            "langgraph_p99_ms": percentile(lg, 99) * 1000 if lg else None,
            "speedup_vs_langgraph": lg_p50 / p50 if lg_p50 else None,
            "ratio_vs_ideal": p50 / ideal if ideal else None,
            "actor_processes": len(pids) + 1,
            "agent_rss_mb": rss,
            "raw_ray_agent_rss_mb": raw_rss,
            "samples": len(af),
        }
    )


def _runner(shape: Shape, handler: Handler) -> Runner:
    config = AgentFlowConfig.from_dict(
        {
            "orchestration": shape.orchestration(),
            "agents": {name: {"max_concurrency": AGENT_CONCURRENCY} for name in shape.agents},
        }
    )
    runner = Runner(config)
    for name in shape.agents:
        runner.register_agent(name, handler)
    return runner


def _rounded(row: dict[str, Any]) -> dict[str, Any]:
    return {key: round(value, 3) if isinstance(value, float) else value for key, value in row.items()}


def _ensure_ray() -> bool:
    """Start a private local Ray unless this process already has one; True if started here."""
    if ray.is_initialized():
        return False
    # No runtime_env: workers then use Ray's prestarted processes and start much faster; they
    # import `benchmarks` as installed, or from the current directory (Ray adds it to their path).
    ray.init(
        num_cpus=os.cpu_count(),
        include_dashboard=False,
        log_to_driver=False,
        namespace="actorflow-bench",
        _temp_dir=private_temp_dir(),
    )
    return True


def machine(cores: int) -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "cpu": _cpu_model(),
        "cores": cores,
        "memory_gb": _memory_gb(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "ray": ray.__version__,
        "actorflow": metadata.version("actorflow"),
        "ray_cpus": ray.cluster_resources().get("CPU"),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None
