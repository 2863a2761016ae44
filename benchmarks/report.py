"""Reading the results: the markdown table, the targets from the issue, the PNG chart."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["markdown", "targets", "plot", "pattern_table", "samples_main"]

_COLUMNS = (
    ("pattern", None),
    ("workload", None),
    ("p50 ms", "p50_ms"),
    ("p99 ms", "p99_ms"),
    ("disp/s c1", "throughput_eps_c1"),
    ("disp/s c32", "throughput_eps_c32"),
    ("raw Ray p50", "raw_ray_p50_ms"),
    ("× raw Ray", "overhead_ratio_vs_raw_ray"),
    ("raw Ray disp/s c32", "raw_ray_throughput_eps_c32"),
    ("LangGraph p50", "langgraph_p50_ms"),
    ("LangGraph ÷ us", "speedup_vs_langgraph"),
    ("ideal ms", "ideal_ms"),
    ("× ideal", "ratio_vs_ideal"),
    ("procs", "actor_processes"),
    ("RSS MB", "agent_rss_mb"),
)


def targets(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with the measured value and whether it is met (None: not measured)."""
    patterns = doc["patterns"]

    def field(mode: str, workload: str, key: str) -> float | None:
        return patterns.get(mode, {}).get(workload, {}).get(key)

    checks: list[tuple[str, float | None, float, bool]] = [
        (f"noop {mode}: p50 ÷ raw Ray ≤ 1.3", field(mode, "noop", "overhead_ratio_vs_raw_ray"), 1.3, False)
        for mode in patterns
    ]
    checks.append(("io collaborative: p50 ÷ ideal ≤ 1.2", field("collaborative", "io", "ratio_vs_ideal"), 1.2, False))
    ours, floor = field("route", "io", "throughput_eps_c32"), field("route", "io", "raw_ray_throughput_eps_c32")
    checks.append(("io route: disp/s at 32 ÷ raw Ray ≥ 0.8", ours / floor if ours and floor else None, 0.8, True))
    checks.append(("cpu collaborative: LangGraph p50 ÷ p50 ≥ 1.7", field("collaborative", "cpu", "speedup_vs_langgraph"), 1.7, True))
    return [
        {
            "target": name,
            "measured": None if value is None else round(value, 3),
            "met": None if value is None else (value >= bound if at_least else value <= bound),
        }
        for name, value, bound, at_least in checks
    ]


def markdown(doc: dict[str, Any]) -> str:
    """The results table, the targets and what to know to read them."""
    lines = [
        "| " + " | ".join(title for title, _ in _COLUMNS) + " |",
        "|" + "|".join("---" if key is None else "---:" for _, key in _COLUMNS) + "|",
    ]
    for mode, rows in doc["patterns"].items():
        for workload, row in rows.items():
            cells = [mode, workload] + [_cell(row.get(key)) for _, key in _COLUMNS[2:]]
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "| target | measured | met |", "|---|---:|---|"]
    for check in targets(doc):
        met = {True: "yes", False: "**no**", None: "not measured"}[check["met"]]
        measured = "–" if check["measured"] is None else f"{check['measured']:.3f}"
        lines.append(f"| {check['target']} | {measured} | {met} |")
    m = doc["machine"]
    lines += ["", f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB; Python {m['python']}, Ray {m['ray']}."]
    lg = doc["langgraph"]
    if not lg["installed"]:
        lines.append("LangGraph is not installed, so its columns are empty: pip install 'actorflow[bench]'.")
    else:
        lines.append(f"LangGraph {lg['version']}, in-process.")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) < 10 else f"{value:.0f}" if abs(value) >= 100 else f"{value:.1f}"
    return str(value)


def plot(doc: dict[str, Any], path: str | Path) -> Path:
    """A PNG: p50 latency per pattern, one panel per workload, baselines side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = (("actorflow", "p50_ms"), ("raw Ray", "raw_ray_p50_ms"), ("LangGraph", "langgraph_p50_ms"), ("ideal", "ideal_ms"))
    modes = list(doc["patterns"])
    workloads = list(dict.fromkeys(w for rows in doc["patterns"].values() for w in rows))
    fig, axes = plt.subplots(1, len(workloads), figsize=(5 * len(workloads), 4.2), squeeze=False)
    width = 0.8 / len(systems)
    for ax, workload in zip(axes[0], workloads):
        for i, (label, key) in enumerate(systems):
            values = [doc["patterns"][mode].get(workload, {}).get(key) or 0.0 for mode in modes]
            ax.bar([x + (i - 1.5) * width for x in range(len(modes))], values, width, label=label)
        ax.set_title(f"{workload} workload")
        ax.set_xticks(range(len(modes)), modes, rotation=20)
        ax.set_ylabel("p50 latency (ms)")
    axes[0][0].legend()
    fig.suptitle(f"actorflow patterns vs baselines ({doc['machine']['cores']} cores)")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def pattern_table(patterns: dict[str, dict[str, Any]], columns: tuple[tuple[str, str, str], ...]) -> str:
    """A markdown table, one row per pattern; `columns` are (header, key of the row, format spec)."""
    lines = ["| pattern | " + " | ".join(header for header, _, _ in columns) + " |", "|---|" + "---:|" * len(columns)]
    for mode, row in patterns.items():
        lines.append(f"| {mode} | " + " | ".join(format(row[key], spec) for _, key, spec in columns) + " |")
    return "\n".join(lines)


def samples_main(argv: list[str] | None, prog: str, description: str, run: Callable[[int], dict[str, Any]],
                 markdown: Callable[[dict[str, Any]], str]) -> int:
    """The command line of a side-by-side latency benchmark: `--quick` (40 samples per system
    and pattern, else 200) and `--json PATH`; prints `markdown(run(samples))`."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--quick", action="store_true", help="40 samples per system and pattern (default 200)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    doc = run(40 if args.quick else 200)
    print(markdown(doc))
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
    return 0
