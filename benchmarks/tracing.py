"""What tracing costs: `dispatch()` with OpenTelemetry tracing on vs off, per pattern, on the
`noop` workload (pure orchestration overhead), interleaved in the same run.

    python -m benchmarks.tracing            # 200 samples per system and pattern
    python -m benchmarks.tracing --quick    # 40

The traced runner exports every span over OTLP/HTTP to a real receiver in this process
(`benchmarks/otlp_receiver.py`), as it would to a collector. Prints a markdown table: p50 of
each, the ratio on/off, and the spans received (proof that tracing was on).
"""

from __future__ import annotations

import asyncio
import os
import sys
from contextlib import ExitStack, contextmanager
from typing import Any

from actorflow import Event
from benchmarks.harness import _ensure_ray, _runner
from benchmarks.measure import latencies, percentile
from benchmarks.report import pattern_table, samples_main
from benchmarks.otlp_receiver import OTLPReceiver
from benchmarks.shapes import MODES, SHAPES
from benchmarks.workloads import WORKLOADS

__all__ = ["run", "main"]


@contextmanager
def _exporting_to(receiver: OTLPReceiver):
    """The OTEL variables a user would export, for as long as a runner starts (it hands them on)."""
    settings = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "200"}
    saved = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run(samples: int, warmup: int = 5) -> dict[str, Any]:
    owns_ray = _ensure_ray()
    import ray

    workload = WORKLOADS["noop"]
    rows: dict[str, Any] = {}
    try:
        with OTLPReceiver() as receiver:
            for mode in MODES:
                shape = SHAPES[mode]
                with ExitStack() as stack:
                    off = _runner(shape, workload.handler).start()
                    stack.callback(off.stop)
                    with _exporting_to(receiver):
                        on = _runner(shape, workload.handler).start()
                    stack.callback(on.stop)
                    before = len(receiver.spans)
                    calls = {
                        name: lambda runner=runner: runner.dispatch_async(Event(shape.entry, workload.payload))
                        for name, runner in (("off", off), ("on", on))
                    }
                    seen = asyncio.run(latencies(calls, samples, warmup))
                    on.stop()  # exports what is still buffered
                p50 = {name: percentile(values, 50) * 1000 for name, values in seen.items()}
                rows[mode] = {
                    "off_p50_ms": round(p50["off"], 3),
                    "on_p50_ms": round(p50["on"], 3),
                    "on_vs_off": round(p50["on"] / p50["off"], 3),
                    "spans_received": len(receiver.spans) - before,
                }
                print(f"{mode}: {rows[mode]}", file=sys.stderr, flush=True)
    finally:
        if owns_ray:
            ray.shutdown()
    return {"samples": samples, "workload": "noop", "patterns": rows}


_COLUMNS = (
    ("tracing off p50 ms", "off_p50_ms", ".2f"), ("tracing on p50 ms", "on_p50_ms", ".2f"),
    ("on / off", "on_vs_off", ".2f"), ("spans received", "spans_received", "d"),
)


def markdown(doc: dict[str, Any]) -> str:
    return pattern_table(doc["patterns"], _COLUMNS)


def main(argv: list[str] | None = None) -> int:
    return samples_main(argv, "python -m benchmarks.tracing", __doc__.splitlines()[0], run, markdown)


if __name__ == "__main__":
    raise SystemExit(main())
