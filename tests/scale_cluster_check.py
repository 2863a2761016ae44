"""Multi-node scale check, run as a script by test_scale.py: it needs a Ray cluster of its own.

A head and two worker nodes (`ray.cluster_utils.Cluster`, processes on this machine). An
async agent with 3 replicas and `scheduling = "spread"` should land on 3 nodes. Then, with
dispatches in flight, a worker node is removed (its raylet and agent processes die at once):
every dispatch must end ok or with a named actorflow error, none may hang, none be lost, and
the agent's lost replica must come back on a survivor. Prints one JSON object on its last line.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import shutil
import sys
import time

import ray
from ray.cluster_utils import Cluster

from actorflow import ActorflowError, Event, Runner
from actorflow.runtime.connect import private_temp_dir
from cluster_check import HEALTH_CHECK, kill_process


CONFIG = """
[orchestration]
mode = "route"
timeout_seconds = 30
[orchestration.retry]
max_retries = 20
initial_delay_seconds = 0.2
max_delay_seconds = 1.0
jitter = false
[orchestration.circuit_breaker]
failure_threshold = 1000
# A small CPU share: Ray's SPREAD round-robins over the nodes with room for the actor (with
# no resources at all it is best effort only).
[agents.fan]
num_cpus = 0.1
replicas = 3
scheduling = "spread"
"""

WAVE = 30


async def where_slowly(event, state):
    """Reports the node and process of the replica, after 0.3 s of 'I/O'."""
    await asyncio.sleep(0.3)
    return {"node": ray.get_runtime_context().get_node_id(), "pid": os.getpid()}


def main(config_path: str) -> dict:
    os.environ["RAY_TMPDIR"] = private_temp_dir()
    os.makedirs(os.environ["RAY_TMPDIR"], exist_ok=True)
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "_system_config": HEALTH_CHECK, "include_dashboard": False},
    )
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    names = {cluster.head_node.node_id: "head", workers[0].node_id: "w1", workers[1].node_id: "w2"}
    report: dict = {}
    runner = Runner.from_config(config_path)
    runner.register_agent("fan", where_slowly)
    outcomes: dict[str, int] = {}
    try:
        runner.start()
        # Where the replicas are: as many concurrent calls as replicas reach each one once
        # (the endpoint picks the replica with the fewest calls in flight).
        first = [runner.emit(Event("fan")) for _ in range(3)]
        placed = [f.result(timeout=60).state for f in first]
        report["placed"] = sorted(names[s.get("node")] for s in placed)

        doomed = workers[0]
        doomed_pids = [s.get("pid") for s in placed if s.get("node") == doomed.node_id]
        futures = [runner.emit(Event("fan", {"i": i})) for i in range(WAVE)]  # in flight when the node goes
        time.sleep(0.1)  # the calls are on the replicas now
        killed_at = time.monotonic()
        cluster.remove_node(doomed, allow_graceful=False)
        for pid in doomed_pids:
            kill_process(pid)
        futures += [runner.emit(Event("fan", {"i": WAVE + i})) for i in range(WAVE)]
        done, hung = concurrent.futures.wait(futures, timeout=90)
        nodes_after = set()
        for future in done:
            try:
                future.result()
                outcomes["ok"] = outcomes.get("ok", 0) + 1
            except ActorflowError as err:  # a named error
                outcomes[type(err).__name__] = outcomes.get(type(err).__name__, 0) + 1
            except Exception as err:  # an unnamed one: the check fails
                outcomes["unnamed " + type(err).__name__] = outcomes.get("unnamed " + type(err).__name__, 0) + 1
        report["outcomes"], report["hung"], report["sent"] = outcomes, len(hung), len(futures)
        report["settled_seconds"] = round(time.monotonic() - killed_at, 2)

        # Afterwards every replica answers from a surviving node.
        after = [runner.emit(Event("fan")) for _ in range(9)]
        for f in after:
            try:
                nodes_after.add(names.get(f.result(timeout=60).state.get("node"), "?"))
            except ActorflowError as err:  # the supervisor may have been on the removed node
                if "supervisor actor died" not in str(err):
                    raise
        again = [runner.emit(Event("fan")) for _ in range(9)]
        nodes_after |= {names.get(f.result(timeout=60).state.get("node"), "?") for f in again}
        report["nodes_after"] = sorted(nodes_after)
        report["removed"] = names[doomed.node_id]
        # Ray restarts the removed node's replica on a survivor; its actor table shows it once
        # the restart has begun (seconds on a loaded machine): wait for that, bounded.
        deadline = time.monotonic() + 30
        while (restarts := runner.agents()[0]["restarts"]) in (0, None) and time.monotonic() < deadline:
            time.sleep(0.2)
        report["restarts"] = restarts
    finally:
        runner.stop(timeout=10)
        ray.shutdown()
        cluster.shutdown()
        shutil.rmtree(os.environ["RAY_TMPDIR"], ignore_errors=True)
    return report


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])), flush=True)
