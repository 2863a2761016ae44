"""The supervisor's metrics, kept with maintained libraries only (DESIGN "Observability").

Two sinks receive every observation:
- `prometheus_client`, in a registry of this supervisor's own, rendered with `generate_latest`
  for `Runner.metrics_text()` and the HTTP app's `/metrics`;
- `ray.util.metrics`, Ray's metrics system: each node's metrics agent exports what the actors on
  that node record, so a Ray cluster's Prometheus scrapes them (Ray prefixes the names `ray_`).

Families (names and labels as DESIGN):
`actorflow_dispatch_duration_seconds{mode,outcome}` and
`actorflow_agent_run_duration_seconds{agent,status}` (histograms),
`actorflow_dispatches_total{mode,outcome}`, `actorflow_agent_runs_total{agent,status}`,
`actorflow_retries_total{agent}`, `actorflow_llm_tokens_total{agent,model,direction}` (counters),
`actorflow_dispatches_in_flight` and `actorflow_circuit_state{agent}` (0 closed, 1 half-open,
2 open) (gauges).

Recording is on every dispatch's path, so it is kept cheap: the label-bound `prometheus_client`
children are looked up once per label set, and Ray's counters and gauges are recorded in
aggregate (`_RayExport`: summed or last value, handed to Ray at most `RAY_FLUSH_SECONDS` later;
Ray itself exports every few seconds). Ray's histograms take every observation as it comes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics", "DURATION_BUCKETS", "CIRCUIT_VALUE"]

logger = logging.getLogger(__name__)

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
CIRCUIT_VALUE = {"closed": 0, "half_open": 1, "open": 2}
RAY_FLUSH_SECONDS = 1.0
"""Longest a counter's or gauge's change waits before it reaches Ray's metrics system."""

_FAMILIES: list[tuple[str, str, str, tuple[str, ...]]] = [
    # (kind, name without actorflow_ and the counter's _total, help, labels)
    ("histogram", "dispatch_duration_seconds", "Dispatch wall time, by mode and outcome.", ("mode", "outcome")),
    ("histogram", "agent_run_duration_seconds", "Agent run attempt durations, by agent and status.", ("agent", "status")),
    ("counter", "dispatches", "Dispatches handled, by mode and outcome (ok or the error class).", ("mode", "outcome")),
    ("counter", "agent_runs", "Agent run attempts, by agent and status.", ("agent", "status")),
    ("counter", "retries", "Agent retries scheduled, by agent.", ("agent",)),
    ("counter", "llm_tokens", "LLM tokens, by agent, model and direction (input/output).", ("agent", "model", "direction")),
    ("gauge", "dispatches_in_flight", "Dispatches being handled right now.", ()),
    ("gauge", "circuit_state", "Circuit breaker state per agent: 0 closed, 1 half-open, 2 open.", ("agent",)),
]


class Metrics:
    """What one supervisor has done since it started."""

    def __init__(self, models: Mapping[str, str] | None = None, *, ray_export: bool = True) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._models = dict(models or {})  # LLM agent → model, for the token counter
        self._prom: dict[str, Any] = {}
        self._children: dict[tuple[str, ...], Any] = {}  # (family, *label values) → labelled child
        self._ray = _RayExport({})
        self._circuits: dict[str, str] = {}
        self._in_flight = 0
        for kind, name, help_text, labels in _FAMILIES:
            full = f"actorflow_{name}"
            if kind == "histogram":
                self._prom[name] = Histogram(full, help_text, labels, registry=self.registry, buckets=DURATION_BUCKETS)
            elif kind == "counter":
                self._prom[name] = Counter(full, help_text, labels, registry=self.registry)
            else:
                self._prom[name] = Gauge(full, help_text, labels, registry=self.registry)
        if ray_export:
            self._ray = _RayExport(_ray_metrics())

    # -- recording ---------------------------------------------------------------------------

    def dispatch_started(self) -> None:
        self._in_flight += 1
        self._set("dispatches_in_flight", self._in_flight)

    def dispatch_finished(self, mode: str, outcome: str, duration: float) -> None:
        self._in_flight -= 1
        self._set("dispatches_in_flight", self._in_flight)
        labels = {"mode": mode, "outcome": outcome}
        self._observe("dispatch_duration_seconds", duration, labels)
        self._inc("dispatches", 1, labels)

    def observe_run(self, agent: str, status: str, duration: float, usage: Mapping[str, int] | None = None) -> None:
        labels = {"agent": agent, "status": status}
        self._inc("agent_runs", 1, labels)
        self._observe("agent_run_duration_seconds", duration, labels)
        if usage:
            model = self._models.get(agent, "unknown")
            for key, direction in (("input_tokens", "input"), ("output_tokens", "output")):
                if usage.get(key):
                    self._inc("llm_tokens", usage[key], {"agent": agent, "model": model, "direction": direction})

    def retry(self, agent: str) -> None:
        self._inc("retries", 1, {"agent": agent})

    def circuit(self, agent: str, state: str) -> None:
        """Record a breaker's state when it differs from the last one recorded."""
        if self._circuits.get(agent) != state:
            self._circuits[agent] = state
            self._set("circuit_state", CIRCUIT_VALUE[state], {"agent": agent})

    @property
    def in_flight(self) -> int:
        return self._in_flight

    # -- exposition --------------------------------------------------------------------------

    def render(self, circuits: Mapping[str, str] | None = None) -> str:
        """The Prometheus text exposition of this registry (`generate_latest`)."""
        for agent, state in (circuits or {}).items():
            self.circuit(agent, state)
        return generate_latest(self.registry).decode()

    # -- both sinks ------------------------------------------------------------------------------

    def _inc(self, name: str, value: float, labels: dict[str, str]) -> None:
        self._child(name, labels).inc(value)
        self._ray.inc(name, value, labels)

    def _observe(self, name: str, value: float, labels: dict[str, str]) -> None:
        self._child(name, labels).observe(value)
        self._ray.observe(name, value, labels)

    def _set(self, name: str, value: float, labels: dict[str, str] | None = None) -> None:
        (self._child(name, labels) if labels else self._prom[name]).set(value)
        self._ray.set(name, value, labels)

    def flush(self) -> None:
        """Hand what Ray's metrics hold in aggregate to Ray now (before this process ends)."""
        self._ray.flush()

    def _child(self, name: str, labels: dict[str, str]) -> Any:
        """The family's child for these labels (callers pass them in the family's order)."""
        key = (name, *labels.values())
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._prom[name].labels(**labels)
        return child


class _RayExport:
    """Ray's metrics (`ray.util.metrics`), recorded in aggregate.

    A Ray metric call costs microseconds, and Ray exports what was recorded only every few
    seconds, so counters are summed and gauges keep their last value per label set, and are
    handed to Ray together at most `RAY_FLUSH_SECONDS` after the first change (at once when no
    event loop runs). Histograms need every value: they are observed as they come.
    """

    def __init__(self, metrics: dict[str, Any]) -> None:
        self._metrics = metrics
        self._counts: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._levels: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._flush_due = False

    def inc(self, name: str, value: float, labels: dict[str, str]) -> None:
        if name in self._metrics:
            key = (name, tuple(labels.items()))
            self._counts[key] = self._counts.get(key, 0) + value
            self._schedule()

    def set(self, name: str, value: float, labels: dict[str, str] | None) -> None:
        if name in self._metrics:
            self._levels[(name, tuple(labels.items()) if labels else ())] = value
            self._schedule()

    def observe(self, name: str, value: float, labels: dict[str, str]) -> None:
        if name in self._metrics:
            self._metrics[name].observe(value, tags=labels)

    def _schedule(self) -> None:
        if self._flush_due:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._flush_due = True
        loop.call_later(RAY_FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        """Hand what was recorded since the last flush to Ray."""
        self._flush_due = False
        counts, self._counts = self._counts, {}
        levels, self._levels = self._levels, {}
        calls = [(self._metrics[name].inc, value, dict(labels)) for (name, labels), value in counts.items()]
        calls += [(self._metrics[name].set, value, dict(labels) or None) for (name, labels), value in levels.items()]
        for record, value, tags in calls:
            try:
                record(value, tags=tags)
            except Exception as err:  # metrics must never break a dispatch or the loop; one bad call drops only itself
                logger.warning("recording Ray metrics failed: %s", err)


def _ray_metrics() -> dict[str, Any]:
    """The same families in Ray's metrics system (empty outside a Ray worker)."""
    try:
        import ray
        from ray.util import metrics as ray_metrics

        if not ray.is_initialized():
            return {}
        made: dict[str, Any] = {}
        for kind, name, help_text, labels in _FAMILIES:
            full = f"actorflow_{name}" + ("_total" if kind == "counter" else "")
            if kind == "histogram":
                made[name] = ray_metrics.Histogram(full, help_text, boundaries=list(DURATION_BUCKETS), tag_keys=labels)
            elif kind == "counter":
                made[name] = ray_metrics.Counter(full, help_text, tag_keys=labels)
            else:
                made[name] = ray_metrics.Gauge(full, help_text, tag_keys=labels)
        return made
    except Exception as err:  # metrics must never stop a supervisor from starting
        logger.warning("Ray metrics export is off: %s", err)
        return {}
