"""The LLM benchmark: four LLM agents in collaborative mode against a local OpenAI-compatible
server with a fixed reply latency, compared in the same run with the same four calls made
directly with `asyncio.gather` over one `openai.AsyncOpenAI` client.

    python -m benchmarks.llm [--quick] [--json PATH]      # same as: actorflow bench --llm

The server (`benchmarks.chat_server`) runs in a process of its own; the direct calls run in
this process, actorflow's in its agent actors. Both stream, with usage, as the agents do.
Reported per concurrency level (1 and 32 dispatches in flight): p50/p99 latency of a dispatch
(= four parallel calls) and throughput, the ratios actorflow ÷ direct, and the overhead per
dispatch in ms (the p50 difference). Goal: p50 ratio ≤ 1.10 and throughput ratio ≥ 0.9.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

__all__ = ["run", "main", "AGENTS"]

AGENTS = ("a0", "a1", "a2", "a3")
LATENCY = 0.05
PAYLOAD = {"task": "summarize", "dataset": "q4.csv"}
SYSTEM = "You are benchmark agent {name}."
MODEL = "bench-model"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_server(latency: float) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.chat_server", "--port", str(port), "--latency", str(latency)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"http://127.0.0.1:{port}/v1"
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"the chat server exited: {proc.stderr.read().decode()}")
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the chat server did not start within 30 s")


def _config(base_url: str) -> Any:
    from actorflow import AgentFlowConfig

    return AgentFlowConfig.from_dict({
        "llm": {"provider": "openai_compatible", "base_url": base_url, "model": MODEL},
        "orchestration": {"mode": "collaborative", "collaborative_agents": list(AGENTS), "timeout_seconds": 300,
                          "max_concurrency": len(AGENTS)},
        "agents": {name: {"system_prompt": SYSTEM.format(name=name)} for name in AGENTS},
    })


def _direct(base_url: str) -> tuple[Any, Callable[[], Awaitable[Any]]]:
    """The same four streamed calls, made with asyncio.gather over one client (no actorflow)."""
    import openai

    client = openai.AsyncOpenAI(api_key="not-needed", base_url=base_url, max_retries=0)
    user = json.dumps(PAYLOAD)

    async def one(name: str) -> tuple[str, Any]:
        stream = await client.chat.completions.create(
            model=MODEL, stream=True, stream_options={"include_usage": True}, temperature=0.7,
            messages=[{"role": "system", "content": SYSTEM.format(name=name)}, {"role": "user", "content": user}])
        parts, usage = [], None
        async with stream:
            async for chunk in stream:
                usage = chunk.usage or usage
                parts += [c.delta.content for c in chunk.choices if c.delta and c.delta.content]
        return "".join(parts), usage

    async def call() -> Any:
        return await asyncio.gather(*(one(name) for name in AGENTS))

    return client, call


async def _closed_loop(call: Callable[[], Awaitable[Any]], concurrency: int, seconds: float) -> tuple[float, list[float]]:
    """Throughput (calls/s) with `concurrency` calls always in flight, and each call's latency."""
    seen: list[float] = []
    deadline = time.monotonic() + seconds

    async def client() -> None:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            await call()
            seen.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return len(seen) / (time.perf_counter() - started), seen


def run(*, seconds: float = 5.0, warmup: int = 10, levels: tuple[int, ...] = (1, 32), latency: float = LATENCY,
        progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Measure both systems at each concurrency level, alternating per level; returns the report."""
    from actorflow import Event, Runner
    from benchmarks.harness import _ensure_ray, machine
    from benchmarks.measure import percentile

    import ray

    owns_ray = _ensure_ray()
    server, base_url = _start_server(latency)
    runner = Runner(_config(base_url))
    try:
        progress(f"chat server at {base_url} ({latency * 1000:.0f} ms per reply); starting 4 LLM agents")
        runner.start()
        client, direct = _direct(base_url)

        async def actorflow() -> Any:
            result = await runner.dispatch_async(Event(AGENTS[0], PAYLOAD))
            assert len(result.runs) == len(AGENTS) and all(r.status == "ok" for r in result.runs)
            return result

        async def measure() -> dict[str, Any]:
            for _ in range(warmup):
                await actorflow()
                await direct()
            rows = {}
            for level in levels:
                row: dict[str, Any] = {}
                # Each system twice, alternating, so both see the same moments of a noisy machine.
                samples: dict[str, list[float]] = {"actorflow": [], "direct": []}
                rates: dict[str, list[float]] = {"actorflow": [], "direct": []}
                for _ in range(2):
                    for name, call in (("actorflow", actorflow), ("direct", direct)):
                        rate, seen = await _closed_loop(call, level, seconds / 2)
                        samples[name] += seen
                        rates[name].append(rate)
                for name in samples:
                    row[f"{name}_p50_ms"] = percentile(samples[name], 50) * 1000
                    row[f"{name}_p99_ms"] = percentile(samples[name], 99) * 1000
                    row[f"{name}_throughput_dps"] = sum(rates[name]) / len(rates[name])
                    row[f"{name}_samples"] = len(samples[name])
                row["p50_ratio"] = row["actorflow_p50_ms"] / row["direct_p50_ms"]
                row["throughput_ratio"] = row["actorflow_throughput_dps"] / row["direct_throughput_dps"]
                row["overhead_per_dispatch_ms"] = row["actorflow_p50_ms"] - row["direct_p50_ms"]
                rows[f"c{level}"] = {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}
                progress(f"c{level}: p50 {row['actorflow_p50_ms']:.1f} vs {row['direct_p50_ms']:.1f} ms, "
                         f"throughput {row['actorflow_throughput_dps']:.1f} vs {row['direct_throughput_dps']:.1f} disp/s")
            await client.close()
            return rows

        rows = asyncio.run(measure())
        return {
            "machine": machine(len(os.sched_getaffinity(0))),
            "settings": {"agents": len(AGENTS), "mode": "collaborative", "server_latency_ms": latency * 1000,
                         "seconds_per_level": seconds, "warmup": warmup, "levels": list(levels)},
            "levels": rows,
            "targets": {
                f"c{level} p50 ratio ≤ 1.10": rows[f"c{level}"]["p50_ratio"] <= 1.10 for level in levels
            } | {f"c{level} throughput ratio ≥ 0.9": rows[f"c{level}"]["throughput_ratio"] >= 0.9 for level in levels},
        }
    finally:
        runner.stop()
        server.terminate()
        server.wait(timeout=10)
        if owns_ray:
            ray.shutdown()


def markdown(doc: dict[str, Any]) -> str:
    lines = [
        "| in flight | actorflow p50 ms | direct p50 ms | p50 ratio | actorflow disp/s | direct disp/s "
        "| throughput ratio | overhead per dispatch ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for level, row in doc["levels"].items():
        lines.append(f"| {level[1:]} | {row['actorflow_p50_ms']:.1f} | {row['direct_p50_ms']:.1f} | {row['p50_ratio']:.3f} "
                     f"| {row['actorflow_throughput_dps']:.1f} | {row['direct_throughput_dps']:.1f} "
                     f"| {row['throughput_ratio']:.3f} | {row['overhead_per_dispatch_ms']:.1f} |")
    lines.append("")
    lines += [f"- {target}: {'met' if met else 'NOT met'}" for target, met in doc["targets"].items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.llm", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 s per level instead of 10")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    args = parser.parse_args(argv)
    started = time.monotonic()

    def progress(line: str) -> None:
        print(f"[{time.monotonic() - started:4.0f}s] {line}", file=sys.stderr, flush=True)

    doc = run(seconds=2.0 if args.quick else 10.0, warmup=3 if args.quick else 10, progress=progress)
    print(markdown(doc))
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
