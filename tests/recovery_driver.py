"""The driver process of the crash-recovery tests (test_recovery.py).

    python recovery_driver.py DIR start URL...    per journal URL a runner: one event per mode, then wait to be killed
    python recovery_driver.py DIR resume URL...   per journal URL a runner; wait for every dispatch, print the results

The process starts its own embedded Ray (a private temp dir); its runners share it. `start`
writes the event ids to DIR/events.json; every agent run appends a line to DIR/<journal
number>-<mode>.log (durable_agents).
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


def main(where: str, what: str, *urls: str) -> None:
    where_ = Path(where)
    runners = [runner(url) for url in urls]
    try:
        if what == "start":
            ids, futures = {}, []
            for number, run in enumerate(runners):
                for mode, overrides in MODES.items():
                    event = Event("a", {"log": str(where_ / f"{number}-{mode}.log"), "hold": str(where_ / "hold")})
                    ids[f"{number}-{mode}"] = event.id
                    futures.append(run.emit(event, mode=mode, **overrides))
            (where_ / "events.json").write_text(json.dumps(ids))
            for future in futures:  # never returns: the test kills this process meanwhile
                future.result()
        else:
            ids = json.loads((where_ / "events.json").read_text())
            results = {key: runners[int(key.split("-")[0])].wait(event_id, timeout=120).to_dict()
                       for key, event_id in ids.items()}
            print(json.dumps(results))
    finally:
        for run in runners:
            run.stop()


if __name__ == "__main__":
    main(*sys.argv[1:])
