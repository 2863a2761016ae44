"""`python -m benchmarks` and `actorflow bench`: run, print the table, write JSON and PNG."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["add_arguments", "run", "main"]

DESCRIPTION = (
    "Benchmark actorflow's five patterns on noop, io and cpu workloads against a raw-Ray floor, "
    "LangGraph (with the bench extra) and the ideal; prints a markdown table."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="fewer samples: under 3 minutes on 2 cores")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    parser.add_argument("--plot", metavar="PATH", help="write a PNG chart (needs matplotlib: the bench extra)")
    parser.add_argument("--llm", action="store_true",
                        help="instead: four LLM agents vs direct openai calls against a local 50 ms chat server")
    parser.add_argument("--concurrency", action="store_true",
                        help="instead: 32–1,024 concurrent dispatches of 50 ms async agents vs raw Ray: issue 14's goal ratios")


def run(args: argparse.Namespace) -> int:
    if getattr(args, "llm", False):
        from benchmarks import llm

        return llm.main([*(["--quick"] if args.quick else []), *(["--json", args.json] if args.json else [])])
    if getattr(args, "concurrency", False):
        from benchmarks import concurrency

        return concurrency.main([*(["--quick"] if args.quick else []), *(["--json", args.json] if args.json else [])])
    if args.plot:
        try:
            import matplotlib  # noqa: F401  (fail before the run, not after it)
        except ImportError:
            print("benchmarks: --plot needs matplotlib: pip install 'actorflow[bench]'", file=sys.stderr)
            return 2
    from benchmarks import harness, report  # imports Ray

    started = time.monotonic()

    def progress(line: str) -> None:
        print(f"[{time.monotonic() - started:4.0f}s] {line}", file=sys.stderr, flush=True)

    settings = harness.QUICK if args.quick else harness.FULL
    with contextlib.redirect_stdout(sys.stderr), _bar(settings) as (say, on_case):  # Ray's warnings stay off stdout
        doc = harness.run(settings, progress=say or progress, on_case=on_case)
    doc["targets"] = report.targets(doc)
    print(report.markdown(doc))
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
        progress(f"wrote {args.json}")
    if args.plot:
        progress(f"wrote {report.plot(doc, args.plot)}")
    return 0


@contextlib.contextmanager
def _bar(settings: Any) -> Iterator[tuple[Any, Any]]:
    """On a terminal, a `rich` progress bar over the cases (the lines print above it);
    otherwise nothing (the plain progress lines on stderr)."""
    if not sys.stderr.isatty():
        yield None, None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("benchmark cases"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=Console(stderr=True))
    task = bar.add_task("cases", total=len(settings.modes) * len(settings.workloads))
    with bar:
        yield bar.console.print, lambda: bar.advance(task)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=DESCRIPTION)
    add_arguments(parser)
    return run(parser.parse_args(argv))
