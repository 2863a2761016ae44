"""Multi-node check, run as a script by test_cluster.py: it needs a Ray cluster of its own.

A head and two worker nodes (`ray.cluster_utils.Cluster`, processes on this machine) carry
custom resources; agents demand them. The script checks where each agent's actor runs, then
kills the node hosting the agent that either worker node can host, and times how long until a
dispatch to it succeeds again (the next one, or the one after when the supervisor was on that
node too). It prints one JSON object on its last line.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time

import ray
from ray.cluster_utils import Cluster

from actorflow import ActorflowError, Event, Runner
from actorflow.runtime.connect import private_temp_dir

# Fast node-death detection (the default health check takes ~15 s to declare a node dead).
HEALTH_CHECK = {"health_check_period_ms": 500, "health_check_timeout_ms": 500, "health_check_failure_threshold": 3}

CONFIG = """
[orchestration]
mode = "route"
timeout_seconds = 60
[orchestration.retry]
max_retries = 20
initial_delay_seconds = 0.2
max_delay_seconds = 1.0
jitter = false
[orchestration.circuit_breaker]
failure_threshold = 100
# num_cpus = 0: an actor that names resources holds them (and 1 CPU by default) for its life.
[agents.east]
num_cpus = 0
resources = { zone_east = 1 }
[agents.west]
num_cpus = 0
resources = { zone_west = 1 }
[agents.roaming]
num_cpus = 0
resources = { roaming = 1 }
"""


def where(event, state):
    """Reports the node and process the agent's actor runs in."""
    return {"node": ray.get_runtime_context().get_node_id(), "pid": os.getpid()}


def main(config_path: str) -> dict:
    # A private temp dir, also for the "current cluster" address file Ray writes under it.
    os.environ["RAY_TMPDIR"] = private_temp_dir()
    os.makedirs(os.environ["RAY_TMPDIR"], exist_ok=True)
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "_system_config": HEALTH_CHECK, "include_dashboard": False},
    )
    east = cluster.add_node(num_cpus=1, resources={"zone_east": 1, "roaming": 1})
    west = cluster.add_node(num_cpus=1, resources={"zone_west": 1, "roaming": 1})
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    nodes = {"head": cluster.head_node.node_id, "east": east.node_id, "west": west.node_id}
    report: dict = {"nodes": nodes}
    runner = Runner.from_config(config_path)
    for name in ("east", "west", "roaming"):
        runner.register_agent(name, where)
    try:
        runner.start()
        states = {name: runner.dispatch(Event(name)).state for name in ("east", "west", "roaming")}
        report["placed"] = {agent: _name(nodes, state.get("node")) for agent, state in states.items()}

        # The machine is lost: its raylet and every agent process on it die at once.
        doomed = east if states["roaming"].get("node") == east.node_id else west
        killed_at = time.monotonic()
        cluster.remove_node(doomed, allow_graceful=False)
        for state in states.values():
            if state.get("node") == doomed.node_id:
                kill_process(state.get("pid"))
        try:
            result = runner.dispatch(Event("roaming"))  # retried until the actor is back elsewhere
            report["supervisor_lost"] = False
        except ActorflowError as err:
            # The supervisor (0 CPUs: Ray may place it on any node) was on that node too: the
            # dispatches it held fail, and the next one starts a new supervisor.
            if "supervisor actor died" not in str(err):
                raise
            report["supervisor_lost"] = True
            result = runner.dispatch(Event("roaming"))
        report["recovery_seconds"] = round(time.monotonic() - killed_at, 2)
        report["removed"] = _name(nodes, doomed.node_id)
        report["roaming_after"] = _name(nodes, result.state.get("node"))
        report["attempts"] = [(run.attempt, run.status) for run in result.runs]
    finally:
        runner.stop(timeout=10)
        ray.shutdown()
        cluster.shutdown()
        shutil.rmtree(os.environ["RAY_TMPDIR"], ignore_errors=True)
    return report


def kill_process(pid: int) -> None:
    """SIGKILL `pid` unless it is already gone."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _name(nodes: dict[str, str], node_id: str) -> str:
    return next((name for name, nid in nodes.items() if nid == node_id), node_id)


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])), flush=True)
