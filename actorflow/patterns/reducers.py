"""`[orchestration.merge]`: per-key reducers for the collaborative merge.

A reducer folds the values the agents wrote to one key, in list order, starting from the
input's value (`merge.REMOVED` when the input had no such key):

    append  list + item          extend  list + list        union  sorted unique items
    sum     number + number      max / min                  deep   recursive dict merge
    last_wins / first_wins       the last / first write; differing writes are a conflict
    error   differing writes raise MergeConflictError

`default` (last_wins | first_wins | error) applies to every key without its own reducer, meta
keys included. A combining reducer ignores an agent that removed the key. A value a reducer
cannot combine (e.g. `sum` on a string) raises MergeConflictError naming the key and the agent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from actorflow.exceptions import MergeConflictError
from actorflow.patterns.merge import REMOVED, Resolve, _same, last_wins

__all__ = ["REDUCERS", "DEFAULTS", "check_reducers", "resolvers"]

DEFAULTS = ("last_wins", "first_wins", "error")


def _first_wins(key: str, base: Any, writes: list[tuple[str, Any]]) -> tuple[Any, bool]:
    values = [value for _, value in writes]
    return values[0], any(not _same(values[0], value) for value in values[1:])


def _error(key: str, base: Any, writes: list[tuple[str, Any]]) -> tuple[Any, bool]:
    value, conflict = last_wins(key, base, writes)
    if conflict:
        agents = [agent for agent, _ in writes]
        raise MergeConflictError(
            f"merge conflict on key {key!r}: agents {', '.join(agents)} wrote different values "
            f'(its reducer is "error"; set [orchestration.merge] {key} = "last_wins" or a combining reducer)',
            key=key, agents=agents,
        )
    return value, False


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _deep(acc: Any, value: Any) -> Any:
    if not isinstance(acc, Mapping) or not isinstance(value, Mapping):
        return value
    out = dict(acc)
    for key, item in value.items():
        out[key] = _deep(out[key], item) if key in out else item
    return out


# name → (step(acc, value) -> acc, what the accumulator must be, what the value must be)
_Step = Callable[[Any, Any], Any]
_FOLDS: dict[str, tuple[_Step, Callable[[Any], bool], Callable[[Any], bool], str, Callable[[], Any]]] = {
    "append": (lambda acc, v: [*acc, v], lambda a: isinstance(a, list), lambda v: True, "a list", list),
    "extend": (lambda acc, v: [*acc, *v], lambda a: isinstance(a, list), lambda v: isinstance(v, list),
               "lists", list),
    "union": (lambda acc, v: _union(acc, v), lambda a: isinstance(a, list), lambda v: True, "lists", list),
    "sum": (lambda acc, v: acc + v, _is_number, _is_number, "numbers", lambda: 0),
    "max": (lambda acc, v: v if acc is REMOVED or v > acc else acc, lambda a: True, lambda v: True,
            "comparable values", lambda: REMOVED),
    "min": (lambda acc, v: v if acc is REMOVED or v < acc else acc, lambda a: True, lambda v: True,
            "comparable values", lambda: REMOVED),
    "deep": (_deep, lambda a: isinstance(a, Mapping), lambda v: isinstance(v, Mapping), "tables (dicts)", dict),
}


def _union(acc: list[Any], value: Any) -> list[Any]:
    items = [*acc, *(value if isinstance(value, list) else [value])]
    unique = list(dict.fromkeys(items)) if all(_hashable(i) for i in items) else _unique(items)
    try:
        return sorted(unique)
    except TypeError:
        return unique


def _hashable(item: Any) -> bool:
    try:
        hash(item)
        return True
    except TypeError:
        return False


def _unique(items: list[Any]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if not any(_same(item, seen) for seen in out):
            out.append(item)
    return out


def _fold(name: str) -> Resolve:
    step, acc_ok, value_ok, what, empty = _FOLDS[name]

    def resolve(key: str, base: Any, writes: list[tuple[str, Any]]) -> tuple[Any, bool]:
        acc = empty() if base is REMOVED else base
        if not acc_ok(acc) and acc is not REMOVED:
            raise MergeConflictError(
                f'reducer "{name}" for key {key!r} needs {what}, but the input holds {type(base).__name__}',
                key=key, agents=[agent for agent, _ in writes],
            )
        for agent, value in writes:
            if value is REMOVED:
                continue
            try:
                if not value_ok(value):
                    raise TypeError(type(value).__name__)
                acc = step(acc, value)
            except TypeError as err:
                raise MergeConflictError(
                    f'reducer "{name}" for key {key!r} cannot combine the value agent {agent!r} wrote '
                    f"({type(value).__name__}: {value!r:.60}): it needs {what} ({err})",
                    key=key, agents=[agent],
                ) from None
        return acc, False

    return resolve


REDUCERS: dict[str, Resolve] = {
    "last_wins": last_wins,
    "first_wins": _first_wins,
    "error": _error,
    **{name: _fold(name) for name in _FOLDS},
}


def check_reducers(merge: Mapping[str, str]) -> None:
    """Raise ValueError naming the key of an unknown reducer (or a non-conflict `default`)."""
    for key, name in merge.items():
        allowed = DEFAULTS if key == "default" else tuple(REDUCERS)
        if name not in allowed:
            raise ValueError(
                f"[orchestration.merge] {key} = {name!r} is not a reducer; allowed: {', '.join(allowed)}"
            )


def resolvers(merge: Mapping[str, str]) -> tuple[Resolve, Resolve]:
    """(data, meta) `Resolve`s for `merge.merge` from `[orchestration.merge]`: per-key reducers
    for data keys, `default` (last_wins when absent) for the rest."""
    if not merge:
        return last_wins, last_wins
    default = REDUCERS[merge.get("default", "last_wins")]
    per_key = {key: REDUCERS[name] for key, name in merge.items() if key != "default"}

    def resolve(key: str, base: Any, writes: list[tuple[str, Any]]) -> tuple[Any, bool]:
        return per_key.get(key, default)(key, base, writes)

    return resolve, default
