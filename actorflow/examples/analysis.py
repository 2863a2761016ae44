"""The collaborative example: three perspectives on the sales CSV, run in parallel.

Each agent loads the CSV itself (`dataset`, default the shipped sales.csv) and writes its own
key, so the collaborative merge keeps all three: `analyzer` → `analysis_result` (trends by
month and region), `validator` → `validation_result` (data quality), `processor` →
`processing_result` (customer and channel segmentation). Each sets meta `<name>_complete`.
"""

from __future__ import annotations

import math
from typing import Any

from actorflow.events import Event, State
from actorflow.examples._sales import (
    UNKNOWN,
    aggregate,
    check_quality,
    direction,
    growth_pct,
    load_rows,
    parse_rows,
    pct,
    price_range,
    slope,
    total_revenue,
)

__all__ = ["analyzer", "validator", "processor"]


def _done(state: State, agent: str, key: str, value: dict[str, Any]) -> State:
    out = state.clone()
    out.set(key, value)
    out.set_meta(f"{agent}_complete", "true")
    return out


def _records(event: Event) -> tuple[str, list[dict[str, Any]], list[int]]:
    path, rows = load_rows(event.data)
    records, skipped = parse_rows(rows)
    if not records:
        raise ValueError(f"{path}: no row has a parseable date, units and unit_price")
    return path.name, records, skipped


def _trend(series: list[float]) -> dict[str, Any]:
    return {"direction": direction(series), "slope_per_month": round(slope(series), 2),
            "change_pct": growth_pct(series[0], series[-1])}


def analyzer(event: Event, state: State) -> State:
    """Revenue trends by month and by region → `analysis_result`."""
    dataset, records, skipped = _records(event)
    monthly = aggregate(records, "month")
    months = list(monthly)
    series = [monthly[m]["revenue"] for m in months]
    by_region = {}
    for region, totals in aggregate(records, "region").items():
        per_month = aggregate([r for r in records if r["region"] == region], "month")
        region_series = [per_month.get(m, {}).get("revenue", 0.0) for m in months]
        by_region[region] = {**totals, "monthly_revenue": dict(zip(months, region_series)), **_trend(region_series)}
    result = {
        "dataset": dataset,
        "orders": len(records),
        "skipped_lines": skipped,
        "total_revenue": total_revenue(records),
        "months": [{"month": m, **monthly[m], "change_pct": growth_pct(series[i - 1], series[i]) if i else None}
                   for i, m in enumerate(months)],
        "trend": _trend(series),
        "best_month": max(months, key=lambda m: monthly[m]["revenue"]),
        "weakest_month": min(months, key=lambda m: monthly[m]["revenue"]),
        "by_region": by_region,
        "top_region": max(by_region, key=lambda r: by_region[r]["revenue"]),
        "fastest_growing_region": max(by_region, key=lambda r: by_region[r]["slope_per_month"]),
    }
    out = _done(state, "analyzer", "analysis_result", result)
    out.set_meta("analysis_trend", result["trend"]["direction"])
    return out


def validator(event: Event, state: State) -> State:
    """Data-quality rules over the CSV's rows → `validation_result`."""
    path, rows = load_rows(event.data)
    result = {"dataset": path.name, **check_quality(rows, price_range(event.data))}
    out = _done(state, "validator", "validation_result", result)
    out.set_meta("validation_passed", str(result["passed"]).lower())
    return out


def _segments(ranked: list[tuple[str, dict[str, Any]]], total: float) -> dict[str, dict[str, Any]]:
    """Customers ranked by revenue cut into key (top 20%), regular (next 30%), occasional (rest)."""
    n = len(ranked)
    key_end = math.ceil(0.2 * n)
    regular_end = key_end + math.ceil(0.3 * n)
    segments = {}
    for name, part in (("key", ranked[:key_end]), ("regular", ranked[key_end:regular_end]),
                       ("occasional", ranked[regular_end:])):
        revenue = round(sum(c["revenue"] for _, c in part), 2)
        segments[name] = {"customers": len(part), "revenue": revenue, "share_pct": pct(revenue, total)}
    return segments


def processor(event: Event, state: State) -> State:
    """Customer and channel segmentation → `processing_result`."""
    dataset, records, _ = _records(event)
    total = total_revenue(records)
    channels = {
        name: {**g, "share_pct": pct(g["revenue"], total), "avg_order_value": round(g["revenue"] / g["orders"], 2),
               "customers": len({r["customer_id"] for r in records if r["channel"] == name} - {UNKNOWN})}
        for name, g in aggregate(records, "channel").items()
    }
    attributed = [r for r in records if r["customer_id"] != UNKNOWN]
    customers = aggregate(attributed, "customer_id")
    ranked = sorted(customers.items(), key=lambda kv: (-kv[1]["revenue"], kv[0]))
    result = {
        "dataset": dataset,
        "channels": channels,
        "top_channel": max(channels, key=lambda c: channels[c]["revenue"]),
        "customers": {
            "count": len(customers),
            "repeat": sum(1 for c in customers.values() if c["orders"] > 1),
            "one_time": sum(1 for c in customers.values() if c["orders"] == 1),
            "unattributed_orders": len(records) - len(attributed),
            "segments": _segments(ranked, total),
            "top": [{"customer_id": cid, **c} for cid, c in ranked[:5]],
        },
    }
    return _done(state, "processor", "processing_result", result)
