"""The route example: two agents that each answer one request about the sales CSV.

`processor` handles a `process_data` task: it drops the rows that fail the quality rules and
writes a clean CSV. `analyzer` answers a grouped query such as "revenue by region".
"""

from __future__ import annotations

import csv
import io

from actorflow.events import Event, State
from actorflow.examples._report import output_file, write_text
from actorflow.examples._sales import (
    COLUMNS,
    aggregate,
    check_quality,
    line_of,
    load_rows,
    parse_rows,
    pct,
    price_range,
    total_revenue,
)

__all__ = ["processor", "analyzer"]

GROUP_BY = ("region", "product", "channel", "month", "customer_id")
METRICS = ("revenue", "units", "orders")


def processor(event: Event, state: State) -> State:
    """`process_data`: drop flagged rows, write `sales-clean-<session>.csv` → `cleaning_result`."""
    task = event.data.get("task", "process_data")
    if task != "process_data":
        raise ValueError(f"processor: unknown task {task!r}; this agent handles 'process_data'")
    path, rows = load_rows(event.data)
    quality = check_quality(rows, price_range(event.data))
    flagged = set(quality["flagged_lines"])
    kept = [row for i, row in enumerate(rows) if line_of(i) not in flagged]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(kept)
    written = write_text(output_file(event.data, event.session_id, "sales-clean", "csv"), buffer.getvalue())
    out = state.clone()
    out.set("cleaning_result", {
        "task": task,
        "input": str(path),
        "output": written["path"],
        "rows_in": len(rows),
        "rows_out": len(kept),
        "dropped": quality["issue_counts"],
        "dropped_lines": quality["flagged_lines"],
        "revenue_before": total_revenue(parse_rows(rows)[0]),
        "revenue_after": total_revenue(parse_rows(kept)[0]),
    })
    out.set_meta("handled_by", "processor")
    return out


def analyzer(event: Event, state: State) -> State:
    """Answer "<metric> by <group_by>" (defaults: revenue by region, all groups) → `query_result`."""
    group_by = event.data.get("group_by", "region")
    metric = event.data.get("metric", "revenue")
    top = event.data.get("top")
    if group_by not in GROUP_BY:
        raise ValueError(f"analyzer: 'group_by' must be one of {', '.join(GROUP_BY)}; got {group_by!r}")
    if metric not in METRICS:
        raise ValueError(f"analyzer: 'metric' must be one of {', '.join(METRICS)}; got {metric!r}")
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 1):
        raise ValueError(f"analyzer: 'top' must be a positive integer, got {top!r}")
    path, rows = load_rows(event.data)
    records, skipped = parse_rows(rows)
    groups = aggregate(records, group_by)
    total = round(sum(g[metric] for g in groups.values()), 2)
    ranked = sorted(groups.items(), key=lambda kv: (-kv[1][metric], kv[0]))[:top]
    leader, lead = ranked[0]
    out = state.clone()
    out.set("query_result", {
        "question": f"{metric} by {group_by}",
        "dataset": path.name,
        "rows": [{group_by: key, metric: g[metric], "share_pct": pct(g[metric], total)} for key, g in ranked],
        "total": total,
        "groups": len(groups),
        "skipped_lines": skipped,
        "answer": f"{leader} leads {metric} by {group_by} with {lead[metric]:,} of {total:,} "
                  f"({pct(lead[metric], total)}%).",
    })
    out.set_meta("handled_by", "analyzer")
    return out
