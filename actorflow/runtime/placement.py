"""`[agents.NAME] scheduling`: where an agent's replicas go on a multi-node cluster.

- "spread": Ray's `scheduling_strategy="SPREAD"`, which places the replicas over as many
  nodes as can host them (their `num_cpus`, `num_gpus`, `resources`).
- "pack": a soft node affinity to the node the runner runs on: the replicas share that node
  while it has room for them, and go elsewhere when it has none or is lost.
- "default": Ray's own policy (it fills a node up to half its resources, then spreads).

Strategies, not placement groups: a placement group reserves its bundles up front and pins its
actors to them, and after a node loss its bundles are rebuilt only where the same reservation
fits again; a strategy reserves nothing beyond the actor's own resources, and a replica that
Ray restarts after its node died is placed again under the same rule, on the survivors.
"""

from __future__ import annotations

from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from actorflow.config import AgentConfig

__all__ = ["scheduling_options", "supervisor_options"]


def scheduling_options(config: AgentConfig) -> dict[str, Any]:
    """Ray actor options for the agent's `scheduling` ({} for "default")."""
    if config.scheduling == "spread":
        return {"scheduling_strategy": "SPREAD"}
    if config.scheduling == "pack":
        return _near_the_runner()
    return {}


def supervisor_options(count: int) -> dict[str, Any]:
    """One supervisor lives on the runner's node (soft affinity), so that losing another node
    never takes it and the dispatches it holds; several are spread over the nodes, each
    taking its sessions with it."""
    return _near_the_runner() if count == 1 else {"scheduling_strategy": "SPREAD"}


def _near_the_runner() -> dict[str, Any]:
    try:
        node = ray.get_runtime_context().get_node_id()
    except Exception:  # e.g. a Ray Client driver has no node of its own: no preference
        return {}
    return {"scheduling_strategy": NodeAffinitySchedulingStrategy(node_id=node, soft=True)}
