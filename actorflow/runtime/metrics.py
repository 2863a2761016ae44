"""Counters kept by the supervisor, rendered as Prometheus text (names prefixed `actorflow_`)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

__all__ = ["Metrics"]

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_CIRCUIT_VALUE = {"closed": 0, "half_open": 1, "open": 2}


def _labels(**labels: str) -> str:
    inner = ",".join(f'{k}="{str(v).replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"' for k, v in labels.items())
    return "{" + inner + "}"


@dataclass(slots=True)
class Metrics:
    """What the supervisor has done since it started."""

    dispatches: Counter = field(default_factory=Counter)
    """(mode, outcome) → count; outcome is "ok" or the error class name."""
    agent_runs: Counter = field(default_factory=Counter)
    """(agent, status) → count of attempts."""
    retries: Counter = field(default_factory=Counter)
    """agent → retries scheduled."""
    run_buckets: dict = field(default_factory=lambda: defaultdict(lambda: [0] * len(DURATION_BUCKETS)))
    run_sum: Counter = field(default_factory=Counter)
    run_count: Counter = field(default_factory=Counter)
    in_flight: int = 0
    """Dispatches being handled right now."""

    def observe_run(self, agent: str, status: str, duration: float) -> None:
        self.agent_runs[(agent, status)] += 1
        if status in ("ok", "error", "timeout"):
            buckets = self.run_buckets[agent]
            for i, bound in enumerate(DURATION_BUCKETS):
                if duration <= bound:
                    buckets[i] += 1
            self.run_sum[agent] += duration
            self.run_count[agent] += 1

    def render(self, circuits: dict[str, str]) -> str:
        """Prometheus text exposition format (version 0.0.4)."""
        out: list[str] = []

        def family(name: str, kind: str, help_text: str) -> None:
            out.append(f"# HELP actorflow_{name} {help_text}")
            out.append(f"# TYPE actorflow_{name} {kind}")

        family("dispatches_total", "counter", "Dispatches handled, by mode and outcome.")
        for (mode, outcome), n in sorted(self.dispatches.items()):
            out.append(f"actorflow_dispatches_total{_labels(mode=mode, outcome=outcome)} {n}")
        family("agent_runs_total", "counter", "Agent run attempts, by agent and status.")
        for (agent, status), n in sorted(self.agent_runs.items()):
            out.append(f"actorflow_agent_runs_total{_labels(agent=agent, status=status)} {n}")
        family("agent_run_duration_seconds", "histogram", "Agent run attempt durations.")
        for agent in sorted(self.run_count):
            for bound, n in zip(DURATION_BUCKETS, self.run_buckets[agent]):
                out.append(f"actorflow_agent_run_duration_seconds_bucket{_labels(agent=agent, le=str(bound))} {n}")
            out.append(
                f"actorflow_agent_run_duration_seconds_bucket{_labels(agent=agent, le='+Inf')} {self.run_count[agent]}"
            )
            out.append(f"actorflow_agent_run_duration_seconds_sum{_labels(agent=agent)} {self.run_sum[agent]:.6f}")
            out.append(f"actorflow_agent_run_duration_seconds_count{_labels(agent=agent)} {self.run_count[agent]}")
        family("retries_total", "counter", "Agent retries scheduled, by agent.")
        for agent, n in sorted(self.retries.items()):
            out.append(f"actorflow_retries_total{_labels(agent=agent)} {n}")
        family("circuit_state", "gauge", "Circuit breaker state per agent: 0 closed, 1 half-open, 2 open.")
        for agent, state in sorted(circuits.items()):
            out.append(f"actorflow_circuit_state{_labels(agent=agent)} {_CIRCUIT_VALUE[state]}")
        family("dispatches_in_flight", "gauge", "Dispatches being handled right now.")
        out.append(f"actorflow_dispatches_in_flight {self.in_flight}")
        return "\n".join(out) + "\n"
