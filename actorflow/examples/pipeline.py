"""The sequential example: collector → processor → validator → publisher over the sales CSV.

Each stage reads the previous stage's key from the state and fails with a ValueError when it
is missing, as the seed's data-pipeline agents do.
"""

from __future__ import annotations

import statistics
from typing import Any

from actorflow.events import Event, State
from actorflow.examples._report import money, output_file, table, write_text
from actorflow.examples._sales import (
    COLUMNS,
    aggregate,
    load_rows,
    parse_rows,
    pct,
    price_range,
    require,
    row_issues,
    total_revenue,
    validation_report,
)

__all__ = ["collector", "processor", "validator", "publisher"]

PROCESSED_FIELDS = ("rows_in", "rows_used", "skipped_lines", "period", "total_units", "total_revenue",
                    "order_revenue", "by_region", "by_product", "top_products")
VALIDATION_FIELDS = ("passed", "checked_rows", "issues", "flagged_revenue")


def _stage(state: State, stage: str, next_stage: str = "none") -> State:
    """A clone of `state` with meta `stage`/`next_stage` set, as the seed's stages do."""
    out = state.clone()
    out.set_meta("stage", stage)
    out.set_meta("next_stage", next_stage)
    return out


def collector(event: Event, state: State) -> State:
    """Read the CSV (`dataset`, default the shipped sales.csv) into `raw_data`, a list of row dicts."""
    path, rows = load_rows(event.data)
    out = _stage(state, "collection", "processing")
    out.set("raw_data", rows)
    out.set("collection_info", {"dataset": str(path), "rows": len(rows), "columns": list(COLUMNS)})
    out.set_meta("rows_collected", str(len(rows)))
    return out


def processor(event: Event, state: State) -> State:
    """Statistics over `raw_data` → `processed_data`: totals, per region/product, mean/median, top products."""
    rows = require(state, "raw_data", "processor", "collector")
    records, skipped = parse_rows(rows)
    if not records:
        raise ValueError("processor: no row of raw_data has a parseable date, units and unit_price")
    top_n = event.data.get("top_n", 3)
    if not isinstance(top_n, int) or top_n < 1:
        raise ValueError(f"processor: 'top_n' must be a positive integer, got {top_n!r}")
    revenues = [r["revenue"] for r in records]
    units = [r["units"] for r in records]
    by_product = aggregate(records, "product")
    ranked = sorted(by_product.items(), key=lambda kv: (-kv[1]["revenue"], kv[0]))
    dates = [r["date"] for r in records]
    out = _stage(state, "processing", "validation")
    out.set("processed_data", {
        "rows_in": len(rows),
        "rows_used": len(records),
        "skipped_lines": skipped,
        "period": {"first": min(dates), "last": max(dates)},
        "total_units": sum(units),
        "total_revenue": total_revenue(records),
        "order_revenue": {"mean": round(statistics.fmean(revenues), 2),
                          "median": round(statistics.median(revenues), 2)},
        "order_units": {"mean": round(statistics.fmean(units), 2), "median": statistics.median(units)},
        "by_region": aggregate(records, "region"),
        "by_product": by_product,
        "top_products": [{"product": p, **v} for p, v in ranked[:top_n]],
    })
    return out


def _consistency_issues(processed: dict[str, Any]) -> list[dict[str, Any]]:
    """Check that processed_data adds up: groups sum to the totals, rows are accounted for."""
    issues: list[str] = []
    for group in ("by_region", "by_product"):
        groups = processed.get(group) or {}
        revenue = sum(g["revenue"] for g in groups.values())
        if abs(revenue - processed["total_revenue"]) > 0.01 * max(1, len(groups)):
            issues.append(f"{group} revenue sums to {revenue:.2f}, total is {processed['total_revenue']:.2f}")
        if sum(g["units"] for g in groups.values()) != processed["total_units"]:
            issues.append(f"{group} units do not sum to total_units {processed['total_units']}")
    if processed["rows_used"] + len(processed["skipped_lines"]) != processed["rows_in"]:
        issues.append("rows_used + skipped rows != rows_in")
    return [{"line": None, "rule": "totals_consistent", "message": message} for message in issues]


def validator(event: Event, state: State) -> State:
    """Quality rules over `raw_data` plus consistency of `processed_data` → `validation_result`."""
    rows = require(state, "raw_data", "validator", "collector")
    processed = require(state, "processed_data", "validator", "processor", PROCESSED_FIELDS)
    prices = price_range(event.data)
    result = validation_report(rows, row_issues(rows, prices) + _consistency_issues(processed), prices)
    out = _stage(state, "validation", "publishing")
    out.set("validation_result", result)
    out.set_meta("validation_passed", str(result["passed"]).lower())
    return out


def render_report(processed: dict[str, Any], validation: dict[str, Any], session_id: str, dataset: str) -> str:
    """The pipeline's markdown report."""
    total = processed["total_revenue"]
    summary = [
        ("Rows read", processed["rows_in"]),
        ("Rows used", processed["rows_used"]),
        ("Units sold", f"{processed['total_units']:,}"),
        ("Revenue", money(total)),
        ("Mean order revenue", money(processed["order_revenue"]["mean"])),
        ("Median order revenue", money(processed["order_revenue"]["median"])),
    ]

    def groups(name: str) -> str:
        return table([name, "Orders", "Units", "Revenue", "Share"], [
            (k, g["orders"], f"{g['units']:,}", money(g["revenue"]), f"{pct(g['revenue'], total)}%")
            for k, g in processed[f"by_{name.lower()}"].items()
        ])

    status = "PASSED" if validation["passed"] else "FAILED"
    parts = [
        "# Sales pipeline report",
        f"Session `{session_id}` · dataset `{dataset}` · "
        f"{processed['period']['first']} to {processed['period']['last']}",
        "## Summary", table(["Metric", "Value"], summary),
        "## Revenue by region", groups("Region"),
        "## Revenue by product", groups("Product"),
        "## Top products",
        "\n".join(f"{i}. {p['product']}: {money(p['revenue'])}" for i, p in enumerate(processed["top_products"], 1)),
        f"## Data quality: {status}",
        f"{len(validation['issues'])} issue(s) in {validation['checked_rows']} rows; "
        f"flagged rows contribute {money(validation['flagged_revenue'])} to the revenue above.",
    ]
    if validation["issues"]:
        parts.append(table(["Line", "Rule", "Problem"], [
            (i["line"] if i["line"] is not None else "-", i["rule"], i["message"]) for i in validation["issues"]
        ]))
    return "\n\n".join(parts) + "\n"


def publisher(event: Event, state: State) -> State:
    """Write the markdown report to `output_dir` → `publish_result` {path, bytes}; `pipeline_complete`."""
    processed = require(state, "processed_data", "publisher", "processor", PROCESSED_FIELDS)
    validation = require(state, "validation_result", "publisher", "validator", VALIDATION_FIELDS)
    dataset = (state.get("collection_info") or {}).get("dataset", "?")
    text = render_report(processed, validation, event.session_id, dataset)
    result = write_text(output_file(event.data, event.session_id, "pipeline-report", "md"), text)
    out = _stage(state, "complete")
    out.set("publish_result", result)
    out.set("pipeline_complete", True)
    return out
