"""Collaborative merge: each agent contributes what it changed, applied in list order.

An agent's contribution is the difference between its output and the input it was given:
keys added, keys whose value differs, keys removed — data and meta alike. A key no agent
touched keeps the input's value. When agents changed the same key differently, the later in
the list wins and the key is a conflict (listed in meta `merge_conflicts`). Resolution is one
function per key (`Resolve`), so per-key reducers slot in without touching the diffing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from actorflow.events import State

__all__ = ["REMOVED", "Changes", "Resolve", "changes", "last_wins", "merge"]


class _Removed:
    def __repr__(self) -> str:
        return "REMOVED"


REMOVED: Any = _Removed()
"""Stands for "the agent removed this key"."""


@dataclass(slots=True)
class Changes:
    """What one agent changed: new values by key (REMOVED for a removed key)."""

    agent: str
    data: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.data or self.meta)


Resolve = Callable[[str, Any, list[tuple[str, Any]]], tuple[Any, bool]]
"""`(key, input value or REMOVED, [(agent, written value or REMOVED), …]) → (value, conflict)`."""


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # values whose == is not a bool (arrays) or raises: treat as different
        return a is b


def _diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    out = {key: value for key, value in after.items() if key not in before or not _same(before[key], value)}
    out.update((key, REMOVED) for key in before if key not in after)
    return out


def changes(agent: str, before: State, after: State) -> Changes:
    """What `agent` changed, its output `after` compared with the input `before`."""
    return Changes(agent, _diff(before.data, after.data), _diff(before.meta, after.meta))


def last_wins(key: str, base: Any, writes: list[tuple[str, Any]]) -> tuple[Any, bool]:
    """The last write wins; agents that wrote different values are a conflict."""
    values = [value for _, value in writes]
    conflict = any(not _same(values[0], value) for value in values[1:])
    return values[-1], conflict


def merge(
    base: State, contributions: list[Changes], resolve: Resolve = last_wins, resolve_meta: Resolve | None = None
) -> tuple[State, list[str]]:
    """Apply the contributions in order over a copy of `base`; return it and the conflicting keys.

    `resolve` decides data keys; `resolve_meta` meta keys (default: `resolve`)."""
    merged = base.clone()
    conflicts: set[str] = set()
    for part, read, write, remove, decide in (
        ("data", base.get, merged.set, merged.pop, resolve),
        ("meta", base.get_meta, merged.set_meta, merged.pop_meta, resolve_meta or resolve),
    ):
        writes: dict[str, list[tuple[str, Any]]] = {}
        for contribution in contributions:
            for key, value in getattr(contribution, part).items():
                writes.setdefault(key, []).append((contribution.agent, value))
        for key, written in writes.items():
            value, conflict = decide(key, read(key, REMOVED), written)
            if conflict:
                conflicts.add(key)
            if value is REMOVED:
                remove(key)
            else:
                write(key, value)
    return merged, sorted(conflicts)
