"""The driver process of the crash-recovery tests (test_recovery.py).

    python recovery_driver.py JOURNAL_URL DIR start    dispatch one event per mode, then wait to be killed
    python recovery_driver.py JOURNAL_URL DIR resume   start a runner on the journal, wait for every dispatch

Each runner starts its own embedded Ray (a private temp dir). `start` writes the event ids to
DIR/events.json; every agent run appends a line to DIR/<mode>.log (durable_agents).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from actorflow import AgentFlowConfig, Event, Runner

import durable_agents

MODES = {
    "sequential": {"sequential_agents": ["a", "b", "slow", "c"]},
    "collaborative": {"collaborative_agents": ["a", "b", "slow"]},
    "loop": {"loop_agent": "slow_looper", "max_iterations": 10},
    "mixed": {"collaborative_agents": ["a", "b"], "sequential_agents": ["slow", "c"]},
}


def runner(url: str) -> Runner:
    config = AgentFlowConfig.model_validate({
        "runtime": {"num_cpus": 4, "journal": url, "journal_lease_seconds": 2},
        "orchestration": {"mode": "sequential", "sequential_agents": ["a"], "retry_attempts": 0,
                          "timeout_seconds": 120},
        "agents": {"a": {"max_concurrency": 4}, "b": {"max_concurrency": 4},
                   "slow": {"max_concurrency": 4}, "slow_looper": {"max_concurrency": 4}},
    })
    run = Runner(config)
    for name in ("a", "b", "c", "slow", "slow_looper"):
        run.register_agent(name, getattr(durable_agents, name))
    return run.start(log_to_driver=False)


def main(url: str, where: str, what: str) -> None:
    where_ = Path(where)
    with runner(url) as run:
        if what == "start":
            ids = {}
            futures = []
            for mode, overrides in MODES.items():
                event = Event("a", {"log": str(where_ / f"{mode}.log"), "hold": str(where_ / "hold")})
                ids[mode] = event.id
                futures.append(run.emit(event, mode=mode, **overrides))
            (where_ / "events.json").write_text(json.dumps(ids))
            for future in futures:  # never returns: the test kills this process meanwhile
                future.result()
        else:
            ids = json.loads((where_ / "events.json").read_text())
            results = {mode: run.wait(event_id, timeout=120).to_dict() for mode, event_id in ids.items()}
            print(json.dumps(results))


if __name__ == "__main__":
    main(*sys.argv[1:4])
