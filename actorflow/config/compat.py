"""AgenticGoKit compatibility of agentflow.toml: sections and keys actorflow does not use.

They load with a warning and are dropped before validation, except what has a meaning here:
`[error_routing]` retry and circuit-breaker settings (key names of AgenticGoKit's
`core.Config.ErrorRouting`) fill the `[orchestration.retry]` and
`[orchestration.circuit_breaker]` keys the file does not set.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from actorflow.config.messages import Loc, Problem, dotted, quote

IGNORED_SECTIONS: frozenset[str] = frozenset({
    "logging", "agent_memory", "mcp", "providers", "error_routing", "memory", "rag", "embedding",
    "retrieval", "workflow", "tools", "tracing", "streaming", "middleware", "development",
    "project",
})
"""AgenticGoKit top-level sections that load with a warning (actorflow does not use them)."""

# AgenticGoKit keys inside sections actorflow does know ("agents.*": every [agents.NAME]).
IGNORED_KEYS: dict[str, frozenset[str]] = {
    "agent_flow": frozenset({"provider"}),
    "runtime": frozenset({"max_concurrent_agents", "timeout_seconds"}),
    "llm": frozenset({"api_key", "site_url", "site_name", "modalities", "output_types"}),
    "agents.*": frozenset({"metadata", "retry_policy", "rate_limit", "auto_llm", "memory",
                           "tools"}),
}


def ignored_paths(raw: Mapping[str, Any]) -> list[Loc]:
    """Locations of the AgenticGoKit sections and keys in `raw` that actorflow ignores."""
    paths: list[Loc] = [(key,) for key in raw if key in IGNORED_SECTIONS]
    for section, keys in IGNORED_KEYS.items():
        head, _, star = section.partition(".")
        table = raw.get(head)
        if not isinstance(table, Mapping):
            continue
        tables = ({(name,): t for name, t in table.items() if isinstance(t, Mapping)} if star
                  else {(): table})
        for prefix, entries in tables.items():
            paths += [(head, *prefix, key) for key in entries if key in keys]
    return paths


def ignored_warnings(file: str, raw: Mapping[str, Any]) -> list[str]:
    """One warning per ignored section or key of the file `file` (parsed as `raw`)."""
    warnings = []
    for loc in ignored_paths(raw):
        if loc == ("error_routing",):
            warnings.append(f"{file}: [error_routing] is an AgenticGoKit section; actorflow "
                            "uses only its retry and circuit-breaker settings (mapped onto "
                            "[orchestration.retry] and [orchestration.circuit_breaker] where "
                            "those do not set them) and ignores the rest.")
        elif len(loc) == 1:
            warnings.append(f"{file}: [{loc[0]}] is an AgenticGoKit section that actorflow "
                            "does not use; ignored.")
        else:
            warnings.append(f"{file}: {dotted(loc)} is an AgenticGoKit key that actorflow "
                            "does not use; ignored.")
    return warnings


def strip_ignored(data: dict[str, Any]) -> Mapping[str, Any]:
    """Remove the ignored entries from `data`; return its `[error_routing]` table ({} if none)."""
    routing: Any = {}
    for loc in ignored_paths(data):
        parent = data
        for part in loc[:-1]:
            parent = parent[part]
        value = parent.pop(loc[-1])
        if loc == ("error_routing",):
            routing = value
    return routing if isinstance(routing, Mapping) else {}


_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
                   "h": 3600.0}


def _from_ms(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("must be a number of milliseconds")
    return value / 1000


def _from_duration(value: Any) -> float:
    """Seconds of a Go duration string such as "1s", "500ms" or "1m30s"."""
    if not isinstance(value, str) or not re.fullmatch(rf"(?:{_DURATION_RE.pattern})+", value):
        raise ValueError('must be a duration such as "500ms", "1s" or "1m30s"')
    return sum(float(n) * _DURATION_UNITS[unit] for n, unit in _DURATION_RE.findall(value))


_Convert = Callable[[Any], Any] | None
# (table under [orchestration], key) <- sources in [error_routing], most specific first
_ROUTING_MAP: list[tuple[str, str, list[tuple[Loc, _Convert]]]] = [
    ("retry", "max_retries", [(("retry", "max_retries"), None), (("max_retries",), None)]),
    ("retry", "initial_delay_seconds", [
        (("retry", "base_delay_ms"), _from_ms), (("retry", "base_delay"), _from_duration),
        (("retry_delay_ms",), _from_ms), (("retry_delay",), _from_duration)]),
    ("retry", "max_delay_seconds", [
        (("retry", "max_delay_ms"), _from_ms), (("retry", "max_delay"), _from_duration)]),
    ("retry", "backoff_factor", [(("retry", "backoff_factor"), None)]),
    ("retry", "jitter", [(("retry", "enable_jitter"), None)]),
    ("circuit_breaker", "failure_threshold", [(("circuit_breaker", "failure_threshold"), None)]),
    ("circuit_breaker", "half_open_successes", [(("circuit_breaker", "success_threshold"), None)]),
    ("circuit_breaker", "reset_timeout_seconds", [
        (("circuit_breaker", "reset_timeout_ms"), _from_ms),
        (("circuit_breaker", "reset_timeout"), _from_duration)]),
    ("circuit_breaker", "half_open_max_calls", [
        (("circuit_breaker", "half_open_max_calls"), None)]),
]


def map_error_routing(
    data: dict[str, Any], routing: Mapping[str, Any],
) -> tuple[dict[Loc, tuple[str, Loc]], list[Problem]]:
    """Copy `[error_routing]` settings into the `[orchestration.*]` keys `data` does not set.

    Returns (origins, problems): where each mapped value came from (for error messages) and
    the values that could not be converted. `enabled = false` maps nothing; an explicit
    `orchestration.retry_attempts` wins over `error_routing` max_retries.
    """
    origins: dict[Loc, tuple[str, Loc]] = {}
    problems: list[Problem] = []
    orch = data.get("orchestration", {})
    if not routing or routing.get("enabled") is False or not isinstance(orch, dict):
        return origins, problems
    for table, key, sources in _ROUTING_MAP:
        target = orch.get(table, {})
        if not isinstance(target, dict) or key in target or (
                key == "max_retries" and "retry_attempts" in orch):
            continue
        for src, convert in sources:
            node: Any = routing
            for part in src:
                node = node.get(part) if isinstance(node, Mapping) else None
            if node is None:
                continue
            loc = ("error_routing", *src)
            try:
                value = convert(node) if convert else node
            except ValueError as err:
                problems.append((loc, f"{dotted(loc)} = {quote(node)} is not allowed: {err}"))
            else:
                data.setdefault("orchestration", orch).setdefault(table, target)[key] = value
                origins[("orchestration", table, key)] = (
                    f"{dotted(loc)} (mapped to orchestration.{table}.{key})", loc)
            break
    return origins, problems

