"""Several supervisors (`[runtime] supervisors = N`): which one takes an event, and how their
reports combine.

A session's events always go to the same supervisor (a stable hash of `event.session_id`), so
they are handled by one process in the order they were sent. Each supervisor keeps its own
circuit breakers and metrics, like a client-side breaker: a breaker sees the calls of its own
supervisor only (see README "Several supervisors").
"""

from __future__ import annotations

import zlib
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

__all__ = ["supervisor_slot", "merge_agents", "merge_metrics"]

_SEVERITY = {"closed": 0, "half_open": 1, "open": 2}


def supervisor_slot(session_id: str, supervisors: int) -> int:
    """The supervisor (0 … N-1) that handles this session's events; stable across processes
    and runs (CRC-32, not Python's salted `hash`)."""
    return zlib.crc32(session_id.encode()) % supervisors if supervisors > 1 else 0


def merge_agents(reports: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One entry per agent from every supervisor's `agents()`: `in_flight` summed, `circuit` the
    worst of them, and `circuits` each supervisor's own (in supervisor order)."""
    if len(reports) == 1:
        return reports[0]
    merged = []
    for entries in zip(*reports):
        entry = dict(entries[0])
        entry["in_flight"] = sum(e["in_flight"] for e in entries)
        entry["circuits"] = [e["circuit"] for e in entries]
        entry["circuit"] = max(entry["circuits"], key=_SEVERITY.__getitem__)
        merged.append(entry)
    return merged


def merge_metrics(texts: list[str]) -> str:
    """Every supervisor's Prometheus exposition as one: each family once, each sample with a
    `supervisor="i"` label. Parsed and written by `prometheus_client`, not by hand."""
    if len(texts) == 1:
        return texts[0]
    families: dict[str, Metric] = {}
    for index, text in enumerate(texts):
        for family in text_string_to_metric_families(text):
            merged = families.setdefault(family.name, Metric(family.name, family.documentation, family.type, family.unit))
            for sample in family.samples:
                merged.samples.append(sample._replace(labels={**sample.labels, "supervisor": str(index)}))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(list(families.values())))
    return generate_latest(registry).decode()


class _Families:
    """A collector that yields already-built metric families."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> list[Metric]:
        return self._families
