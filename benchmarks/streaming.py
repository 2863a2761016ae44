"""What streaming costs: `stream()` to the end vs `dispatch()` vs the raw-Ray floor, per pattern,
on the `noop` workload (pure orchestration overhead), interleaved in the same run.

    python -m benchmarks.streaming            # 200 samples per system and pattern
    python -m benchmarks.streaming --quick    # 40

Prints a markdown table: p50 of each, and the ratios stream/dispatch and dispatch/raw Ray.
"""

from __future__ import annotations

import asyncio
import sys
from contextlib import ExitStack
from typing import Any

from actorflow import Event
from benchmarks.harness import AGENT_CONCURRENCY, _ensure_ray, _runner
from benchmarks.measure import latencies, percentile
from benchmarks.report import pattern_table, samples_main
from benchmarks.raw_ray import RawRay
from benchmarks.shapes import MODES, SHAPES
from benchmarks.workloads import WORKLOADS

__all__ = ["run", "main"]


def run(samples: int, warmup: int = 5) -> dict[str, Any]:
    owns_ray = _ensure_ray()
    import ray

    workload = WORKLOADS["noop"]
    shapes = [SHAPES[mode] for mode in MODES]
    rows: dict[str, Any] = {}
    try:
        with ExitStack() as stack:
            raw = stack.enter_context(RawRay(workload.handler, shapes, agent_concurrency=AGENT_CONCURRENCY))
            for shape in shapes:
                runner = _runner(shape, workload.handler).start()
                stack.callback(runner.stop)

                async def streamed(runner=runner, shape=shape) -> None:
                    async for _ in runner.stream_async(Event(shape.entry, workload.payload)):
                        pass

                calls = {
                    "dispatch": lambda runner=runner, shape=shape: runner.dispatch_async(Event(shape.entry, workload.payload)),
                    "stream": streamed,
                    "raw_ray": lambda shape=shape: raw.dispatch(shape.mode, dict(workload.payload)),
                }
                seen = asyncio.run(latencies(calls, samples, warmup))
                p50 = {name: percentile(values, 50) * 1000 for name, values in seen.items()}
                rows[shape.mode] = {
                    "dispatch_p50_ms": round(p50["dispatch"], 3),
                    "stream_p50_ms": round(p50["stream"], 3),
                    "raw_ray_p50_ms": round(p50["raw_ray"], 3),
                    "stream_vs_dispatch": round(p50["stream"] / p50["dispatch"], 3),
                    "dispatch_vs_raw_ray": round(p50["dispatch"] / p50["raw_ray"], 3),
                }
                print(f"{shape.mode}: {rows[shape.mode]}", file=sys.stderr, flush=True)
    finally:
        if owns_ray:
            ray.shutdown()
    return {"samples": samples, "workload": "noop", "patterns": rows}


_COLUMNS = (
    ("dispatch p50 ms", "dispatch_p50_ms", ".2f"), ("stream p50 ms", "stream_p50_ms", ".2f"),
    ("raw Ray p50 ms", "raw_ray_p50_ms", ".2f"), ("stream / dispatch", "stream_vs_dispatch", ".2f"),
    ("dispatch / raw Ray", "dispatch_vs_raw_ray", ".2f"),
)


def markdown(doc: dict[str, Any]) -> str:
    return pattern_table(doc["patterns"], _COLUMNS)


def main(argv: list[str] | None = None) -> int:
    return samples_main(argv, "python -m benchmarks.streaming", __doc__.splitlines()[0], run, markdown)


if __name__ == "__main__":
    raise SystemExit(main())
