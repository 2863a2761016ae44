"""Shared helpers for the example agents: find, read, parse, aggregate and check the sales CSV.

Private to `actorflow.examples`. Rows are plain dicts of strings as read from the file; records
are parsed rows (int units, float prices, revenue); both are JSON-serializable.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from actorflow.events import State

DATA_DIR = Path(__file__).parent / "data"
DEFAULT_DATASET = DATA_DIR / "sales.csv"
COLUMNS = ("date", "region", "product", "units", "unit_price", "customer_id", "channel")
DEFAULT_PRICE_RANGE = (0.01, 1000.0)
UNKNOWN = "unknown"
"""Label for a blank category (region, product, customer, channel) in aggregates."""


def require(state: State, key: str, agent: str, producer: str, fields: Sequence[str] = ()) -> Any:
    """`state[key]`, or a ValueError naming the earlier agent that should have produced it.

    With `fields`, the value must also be a dict holding each of them.
    """
    value = state.get(key)
    if value is None:
        raise ValueError(f"{agent}: no {key!r} in state; the {producer} must run before the {agent}")
    if fields:
        missing = [f for f in fields if not isinstance(value, Mapping) or f not in value]
        if missing:
            raise ValueError(f"{agent}: {key!r} lacks {', '.join(missing)}; "
                             f"expected the output of the {producer}")
    return value


def dataset_path(data: Mapping[str, Any]) -> Path:
    """The CSV named by `data["dataset"]` (a path, or a file name under data/), else the shipped one."""
    value = data.get("dataset")
    if value in (None, ""):
        return DEFAULT_DATASET
    if not isinstance(value, str):
        raise ValueError(f"'dataset' must be a path string, got {value!r}")
    path = Path(value).expanduser()
    if path.is_file():
        return path
    if not path.is_absolute() and (DATA_DIR / path).is_file():
        return DATA_DIR / path
    raise FileNotFoundError(f"dataset {value!r} not found (looked in the working directory and {DATA_DIR})")


def read_rows(path: Path) -> list[dict[str, str]]:
    """The CSV's rows as dicts of stripped strings; a ValueError if columns or rows are missing."""
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(COLUMNS)}")
        rows = [{c: (row.get(c) or "").strip() for c in COLUMNS} for row in reader]
    if not rows:
        raise ValueError(f"{path}: the file has a header but no data rows")
    return rows


def load_rows(data: Mapping[str, Any]) -> tuple[Path, list[dict[str, str]]]:
    """`dataset_path` + `read_rows`: what every CSV-reading agent starts with."""
    path = dataset_path(data)
    return path, read_rows(path)


def line_of(index: int) -> int:
    """The file line of the row at `index` (line 1 is the header)."""
    return index + 2


def _check_rows(rows: Any) -> Sequence[Mapping[str, Any]]:
    if not isinstance(rows, list) or not all(isinstance(r, Mapping) for r in rows):
        raise ValueError(f"expected a list of row dicts, got {type(rows).__name__}")
    return rows


def _parse(text: Any, kind: type) -> Any:
    try:
        return kind(str(text).strip())
    except ValueError:
        return None


def parse_rows(rows: Any) -> tuple[list[dict[str, Any]], list[int]]:
    """Typed records for rows whose date, units and unit_price parse; and the lines skipped."""
    records, skipped = [], []
    for i, row in enumerate(_check_rows(rows)):
        units, price = _parse(row.get("units"), int), _parse(row.get("unit_price"), float)
        date = _parse(row.get("date"), dt.date.fromisoformat)
        if units is None or price is None or date is None:
            skipped.append(line_of(i))
            continue
        records.append({
            "line": line_of(i),
            "date": date.isoformat(),
            "month": date.isoformat()[:7],
            "region": row.get("region") or UNKNOWN,
            "product": row.get("product") or UNKNOWN,
            "customer_id": row.get("customer_id") or UNKNOWN,
            "channel": row.get("channel") or UNKNOWN,
            "units": units,
            "unit_price": price,
            "revenue": units * price,
        })
    return records, skipped


def aggregate(records: Sequence[Mapping[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    """`{group: {orders, units, revenue}}` for `key`, groups in sorted order, revenue rounded."""
    groups: dict[str, dict[str, Any]] = {}
    for r in records:
        g = groups.setdefault(r[key], {"orders": 0, "units": 0, "revenue": 0.0})
        g["orders"] += 1
        g["units"] += r["units"]
        g["revenue"] += r["revenue"]
    return {k: {**groups[k], "revenue": round(groups[k]["revenue"], 2)} for k in sorted(groups)}


def total_revenue(records: Sequence[Mapping[str, Any]]) -> float:
    return round(sum(r["revenue"] for r in records), 2)


def pct(part: float, whole: float) -> float | None:
    """`part` as a percentage of `whole`, one decimal; None when `whole` is zero."""
    return round(100.0 * part / whole, 1) if whole else None


def growth_pct(first: float, last: float) -> float | None:
    """Change from `first` to `last` in percent, one decimal; None when `first` is zero."""
    return round(100.0 * (last - first) / first, 1) if first else None


def slope(values: Sequence[float]) -> float:
    """Least-squares slope of `values` against their index (change per step)."""
    n = len(values)
    if n < 2:
        return 0.0
    mean_x, mean_y = (n - 1) / 2, sum(values) / n
    num = sum((i - mean_x) * (v - mean_y) for i, v in enumerate(values))
    den = sum((i - mean_x) ** 2 for i in range(n))
    return num / den


def direction(values: Sequence[float], tolerance: float = 0.02) -> str:
    """"upward", "downward" or "flat": the slope relative to the mean, beyond `tolerance`."""
    mean = sum(values) / len(values) if values else 0.0
    rel = slope(values) / mean if mean else 0.0
    return "upward" if rel > tolerance else "downward" if rel < -tolerance else "flat"


def price_range(data: Mapping[str, Any]) -> tuple[float, float]:
    """`data["price_range"]` as (min, max), default DEFAULT_PRICE_RANGE."""
    value = data.get("price_range", DEFAULT_PRICE_RANGE)
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"'price_range' must be [min, max] numbers, got {value!r}") from None
    if lo > hi:
        raise ValueError(f"'price_range' min {lo} is above max {hi}")
    return lo, hi


def row_issues(rows: Any, prices: tuple[float, float] = DEFAULT_PRICE_RANGE) -> list[dict[str, Any]]:
    """Quality issues, one dict `{line, rule, message}` per problem found in a row.

    Rules: required_fields (no blank column), numeric (units a whole number, unit_price and
    date parse), non_negative_units, price_range, duplicate (an exact copy of an earlier row).
    """
    lo, hi = prices
    issues: list[dict[str, Any]] = []
    first_seen: dict[tuple[str, ...], int] = {}

    def add(line: int, rule: str, message: str) -> None:
        issues.append({"line": line, "rule": rule, "message": message})

    for i, row in enumerate(_check_rows(rows)):
        line = line_of(i)
        values = {c: str(row.get(c) or "").strip() for c in COLUMNS}
        blank = [c for c in COLUMNS if not values[c]]
        if blank:
            add(line, "required_fields", f"blank {', '.join(blank)}")
        units, price = _parse(values["units"], int), _parse(values["unit_price"], float)
        if values["units"] and units is None:
            add(line, "numeric", f"units {values['units']!r} is not a whole number")
        elif units is not None and units < 0:
            add(line, "non_negative_units", f"units is {units}")
        if values["unit_price"] and price is None:
            add(line, "numeric", f"unit_price {values['unit_price']!r} is not a number")
        elif price is not None and not lo <= price <= hi:
            add(line, "price_range", f"unit_price {price:.2f} outside [{lo:.2f}, {hi:.2f}]")
        if values["date"] and _parse(values["date"], dt.date.fromisoformat) is None:
            add(line, "numeric", f"date {values['date']!r} is not YYYY-MM-DD")
        key = tuple(values[c] for c in COLUMNS)
        if key in first_seen:
            add(line, "duplicate", f"duplicate of line {first_seen[key]}")
        else:
            first_seen[key] = line
    return issues


def validation_report(
    rows: Any, issues: list[dict[str, Any]], prices: tuple[float, float]
) -> dict[str, Any]:
    """The `validation_result` shape shared by the validators.

    `flagged_revenue` is how much of the reported revenue total comes from flagged rows
    (signed: a negative-units row lowers it).
    """
    records, _ = parse_rows(rows)
    flagged = sorted({i["line"] for i in issues if i["line"] is not None})
    flagged_set = set(flagged)
    return {
        "passed": not issues,
        "checked_rows": len(rows),
        "issues": issues,
        "issue_counts": dict(sorted(Counter(i["rule"] for i in issues).items())),
        "flagged_lines": flagged,
        "flagged_revenue": total_revenue([r for r in records if r["line"] in flagged_set]),
        "price_range": list(prices),
    }


def check_quality(rows: Any, prices: tuple[float, float] = DEFAULT_PRICE_RANGE) -> dict[str, Any]:
    """`row_issues` summarised as a `validation_result`."""
    return validation_report(rows, row_issues(rows, prices), prices)
