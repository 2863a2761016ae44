"""Strict JSON (RFC 8259) at the HTTP boundary, both ways.

Python's parsers accept `NaN`, `Infinity` and `1e999` (read as infinity) and its encoder writes
`NaN` back, which no strict JSON parser accepts. Requests with them are refused (400, naming
the position); responses turn non-finite numbers an agent produced into null, as JavaScript's
`JSON.stringify` does.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pydantic_core

from actorflow.serve.errors import RequestError

__all__ = ["check_strict", "dumps"]


def dumps(body: Any) -> str:
    """`body` as strict JSON; values JSON cannot encode (dates, sets) as their `str()`."""
    try:
        return json.dumps(body, default=str, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(body), default=str, allow_nan=False)


def check_strict(body: bytes) -> None:
    """Raise RequestError(400) for a body RFC 8259 forbids but Python would accept."""
    try:
        value = pydantic_core.from_json(body, allow_inf_nan=False)
    except ValueError as err:
        raise RequestError(400, "MalformedBody", f"the request body is not valid JSON (RFC 8259): {err}") from None
    where = _non_finite_at(value)
    if where:
        raise RequestError(400, "MalformedBody", f"the request body has a number too large to represent at {where}")


def _finite(value: Any) -> Any:
    """`value` with every non-finite float replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    if hasattr(value, "to_dict"):
        return _finite(value.to_dict())
    return value


def _non_finite_at(value: Any, where: str = "") -> str | None:
    """Where a non-finite number is in parsed JSON (`data.x[2]`), else None."""
    if isinstance(value, float) and not math.isfinite(value):
        return where or "the top level"
    if isinstance(value, dict):
        items = ((f"{where}.{key}" if where else str(key), item) for key, item in value.items())
    elif isinstance(value, list):
        items = ((f"{where}[{index}]", item) for index, item in enumerate(value))
    else:
        return None
    for path, item in items:
        found = _non_finite_at(item, path)
        if found:
            return found
    return None
