"""The mixed example: a research report on the sales CSV.

Collaborative phase: `analysis.analyzer`, `analysis.validator` and `enricher` (below) each read
the CSV. Sequential phase: `synthesizer` (key findings and recommendations computed from the
three results) → `formatter` (markdown) → `publisher` (writes the report file).
"""

from __future__ import annotations

from typing import Any

from actorflow.events import Event, State
from actorflow.examples._report import money, output_file, signed_pct, table, write_text
from actorflow.examples._sales import (
    UNKNOWN,
    aggregate,
    growth_pct,
    load_rows,
    parse_rows,
    pct,
    require,
    total_revenue,
)
from actorflow.examples.analysis import analyzer, validator

__all__ = ["analyzer", "validator", "enricher", "synthesizer", "formatter", "publisher"]

PHASE_OUTPUTS = {"analysis_result": "analyzer", "validation_result": "validator", "enrichment_result": "enricher"}
PHASE_FIELDS = {
    "analysis_result": ("orders", "total_revenue", "months", "trend", "best_month", "weakest_month",
                        "by_region", "top_region"),
    "validation_result": ("passed", "checked_rows", "issues", "issue_counts", "flagged_lines", "flagged_revenue"),
    "enrichment_result": ("growth", "regions", "channel_share_pct"),
}
REPORT_FIELDS = ("title", "executive_summary", "key_findings", "recommendations", "regions", "data_sources")


def enricher(event: Event, state: State) -> State:
    """Context per region (revenue share, first→last month growth, order value, lead product)
    and overall growth and channel mix → `enrichment_result`."""
    path, rows = load_rows(event.data)
    records, _ = parse_rows(rows)
    if not records:
        raise ValueError(f"enricher: {path}: no row has a parseable date, units and unit_price")
    total = total_revenue(records)
    months = sorted({r["month"] for r in records})
    first, last = months[0], months[-1]

    def month_revenue(subset: list[dict[str, Any]], month: str) -> float:
        return round(sum(r["revenue"] for r in subset if r["month"] == month), 2)

    regions = {}
    for region, g in aggregate(records, "region").items():
        subset = [r for r in records if r["region"] == region]
        products = aggregate(subset, "product")
        first_rev, last_rev = month_revenue(subset, first), month_revenue(subset, last)
        regions[region] = {
            "revenue": g["revenue"],
            "revenue_share_pct": pct(g["revenue"], total),
            "avg_order_value": round(g["revenue"] / g["orders"], 2),
            "customers": len({r["customer_id"] for r in subset} - {UNKNOWN}),
            "lead_product": max(products, key=lambda p: products[p]["revenue"]),
            "first_month_revenue": first_rev,
            "last_month_revenue": last_rev,
            "growth_pct": growth_pct(first_rev, last_rev),
        }
    first_rev, last_rev = month_revenue(records, first), month_revenue(records, last)
    out = state.clone()
    out.set("enrichment_result", {
        "dataset": path.name,
        "total_revenue": total,
        "growth": {"first_month": first, "last_month": last, "first_revenue": first_rev,
                   "last_revenue": last_rev, "growth_pct": growth_pct(first_rev, last_rev)},
        "regions": regions,
        "channel_share_pct": {c: pct(g["revenue"], total) for c, g in aggregate(records, "channel").items()},
    })
    out.set_meta("enricher_complete", "true")
    return out


def _phase_outputs(state: State) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    missing = [f"{key} (from {agent})" for key, agent in PHASE_OUTPUTS.items() if state.get(key) is None]
    if missing:
        raise ValueError("synthesizer: the collaborative phase outputs are missing: " + ", ".join(missing)
                         + "; run analyzer, validator and enricher first")
    return tuple(require(state, key, "synthesizer", agent, PHASE_FIELDS[key])  # type: ignore[return-value]
                 for key, agent in PHASE_OUTPUTS.items())


def synthesizer(event: Event, state: State) -> State:
    """Combine the three collaborative results → `synthesized_report` (summary, findings, recommendations)."""
    analysis, validation, enrichment = _phase_outputs(state)
    growth, regions = enrichment["growth"], enrichment["regions"]
    by_growth = sorted((r for r in regions if regions[r]["growth_pct"] is not None),
                       key=lambda r: regions[r]["growth_pct"])
    top_region, trend = analysis["top_region"], analysis["trend"]
    months = {m["month"]: m["revenue"] for m in analysis["months"]}
    channel_mix = enrichment["channel_share_pct"]
    top_channel = max(channel_mix, key=channel_mix.get)
    n_issues = len(validation["issues"])

    findings = [
        f"Revenue trended {trend['direction']}: {money(growth['first_revenue'])} in {growth['first_month']} "
        f"to {money(growth['last_revenue'])} in {growth['last_month']} ({signed_pct(growth['growth_pct'])}), "
        f"a fitted {money(trend['slope_per_month'])} per month.",
        f"{top_region} is the largest region with {regions[top_region]['revenue_share_pct']}% of revenue "
        f"({money(regions[top_region]['revenue'])}).",
        f"Best month {analysis['best_month']} ({money(months[analysis['best_month']])}); "
        f"weakest {analysis['weakest_month']} ({money(months[analysis['weakest_month']])}).",
    ]
    recommendations = []
    if by_growth:
        fastest, slowest = by_growth[-1], by_growth[0]
        findings.append(f"{fastest} grew fastest ({signed_pct(regions[fastest]['growth_pct'])} first to last month); "
                        f"{slowest} {'fell most' if regions[slowest]['growth_pct'] < 0 else 'grew least'} "
                        f"({signed_pct(regions[slowest]['growth_pct'])}).")
        if regions[slowest]["growth_pct"] < 0:
            recommendations.append(f"Investigate the decline in {slowest} "
                                   f"({signed_pct(regions[slowest]['growth_pct'])}; lead product "
                                   f"{regions[slowest]['lead_product']}).")
        recommendations.append(f"Study what drives {fastest} ({signed_pct(regions[fastest]['growth_pct'])}) "
                               f"and apply it to the other regions.")
    if validation["passed"]:
        findings.append(f"Data quality: all {validation['checked_rows']} rows passed every rule.")
    else:
        counts = ", ".join(f"{rule} {n}" for rule, n in validation["issue_counts"].items())
        findings.append(f"Data quality: {n_issues} issue(s) in {validation['checked_rows']} rows ({counts}); "
                        f"flagged rows contribute {money(validation['flagged_revenue'])} to revenue.")
        recommendations.insert(0, f"Correct the {len(validation['flagged_lines'])} flagged row(s) "
                                  f"(lines {', '.join(map(str, validation['flagged_lines']))}) at the source.")
    recommendations.append(f"Keep investing in the {top_channel} channel ({channel_mix[top_channel]}% of revenue).")

    report = {
        "title": f"Sales research report: {growth['first_month']} to {growth['last_month']}",
        "executive_summary": (
            f"Across {analysis['orders']} orders, revenue totalled {money(analysis['total_revenue'])} and trended "
            f"{trend['direction']} ({signed_pct(growth['growth_pct'])} from first to last month). {top_region} leads; "
            f"the data has {n_issues} quality issue(s)."
        ),
        "key_findings": findings,
        "recommendations": recommendations,
        "regions": [{"region": r, "revenue": regions[r]["revenue"], "share_pct": regions[r]["revenue_share_pct"],
                     "growth_pct": regions[r]["growth_pct"], "trend": analysis["by_region"][r]["direction"],
                     "lead_product": regions[r]["lead_product"]} for r in regions],
        "data_sources": list(PHASE_OUTPUTS),
    }
    out = state.clone()
    out.set("synthesized_report", report)
    out.set_meta("synthesis_complete", "true")
    return out


def formatter(event: Event, state: State) -> State:
    """Render `synthesized_report` as markdown → `formatted_report`."""
    report = require(state, "synthesized_report", "formatter", "synthesizer", REPORT_FIELDS)
    parts = [
        f"# {report['title']}",
        "## Executive summary", report["executive_summary"],
        "## Key findings", "\n".join(f"- {f}" for f in report["key_findings"]),
        "## Regions",
        table(["Region", "Revenue", "Share", "Growth (first→last month)", "Fitted trend", "Lead product"], [
            (r["region"], money(r["revenue"]), f"{r['share_pct']}%", signed_pct(r["growth_pct"]), r["trend"],
             r["lead_product"]) for r in report["regions"]
        ]),
        "## Recommendations", "\n".join(f"{i}. {r}" for i, r in enumerate(report["recommendations"], 1)),
        f"_Sources: {', '.join(report['data_sources'])}. Session `{event.session_id}`._",
    ]
    text = "\n\n".join(parts) + "\n"
    out = state.clone()
    out.set("formatted_report", text)
    out.set_meta("format", "markdown")
    return out


def publisher(event: Event, state: State) -> State:
    """Write `formatted_report` to `output_dir` → `publish_result` {path, bytes}; `report_published`."""
    text = require(state, "formatted_report", "publisher", "formatter")
    if not isinstance(text, str):
        raise ValueError(f"publisher: 'formatted_report' must be text, got {type(text).__name__}")
    out = state.clone()
    out.set("publish_result", write_text(output_file(event.data, event.session_id, "research-report", "md"), text))
    out.set("report_published", True)
    out.set_meta("stage", "complete")
    return out
