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
2 open) (gauges). Recording costs a few microseconds per observation.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics", "DURATION_BUCKETS", "CIRCUIT_VALUE"]

logger = logging.getLogger(__name__)

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
CIRCUIT_VALUE = {"closed": 0, "half_open": 1, "open": 2}

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
        self._ray: dict[str, Any] = {}
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
            self._ray = _ray_metrics()

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
        self._prom[name].labels(**labels).inc(value)
        if name in self._ray:
            self._ray[name].inc(value, tags=labels)

    def _observe(self, name: str, value: float, labels: dict[str, str]) -> None:
        self._prom[name].labels(**labels).observe(value)
        if name in self._ray:
            self._ray[name].observe(value, tags=labels)

    def _set(self, name: str, value: float, labels: dict[str, str] | None = None) -> None:
        family = self._prom[name]
        (family.labels(**labels) if labels else family).set(value)
        if name in self._ray:
            self._ray[name].set(value, tags=labels)


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
