"""Several flows behind one server: `actorflow serve A.toml B.toml` (or a directory).

Each flow is served under its name (`[agent_flow] name`, else the file's stem) at
`/v1/flows/{name}/dispatch` and `/v1/flows/{name}/agents`; `GET /v1/flows` lists them. The
first flow also keeps the one-flow paths (`/v1/dispatch`, `/v1/agents`, …). Each flow has its
own Runner (its own supervisor and agent actors) in every replica.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from actorflow.config import AgentFlowConfig, load_config
from actorflow.config.schema import AgentFlowMeta
from actorflow.exceptions import ConfigError
from actorflow.runtime.runner import Runner
from actorflow.serve.errors import RequestError

__all__ = ["flow_name", "load_flows", "start_flows", "describe_flows", "flow_runner"]

_DEFAULT_NAME = AgentFlowMeta().name


def flow_name(config: AgentFlowConfig) -> str:
    """`[agent_flow] name` when the file sets one, else the file's stem."""
    if config.agent_flow.name != _DEFAULT_NAME or not config.source:
        return config.agent_flow.name
    return Path(config.source).stem


def load_flows(paths: Sequence[str | os.PathLike[str]], *, env: str | None = None) -> list[AgentFlowConfig]:
    """Load every file (a directory: its `*.toml`, sorted); two flows with one name are a ConfigError."""
    files: list[Path] = []
    for path in map(Path, paths):
        files += sorted(path.glob("*.toml")) if path.is_dir() else [path]
    if not files:
        raise ConfigError(f"no agentflow.toml files in {', '.join(map(str, paths))}")
    configs = [load_config(file, env=env) for file in files]
    _names(configs)
    return configs


def _names(configs: Iterable[AgentFlowConfig]) -> list[str]:
    names: list[str] = []
    for config in configs:
        name = flow_name(config)
        if name in names:
            raise ConfigError(f"two flows are named {name!r} ({config.source}); give each a distinct "
                              "[agent_flow] name")
        names.append(name)
    return names


def start_flows(first: AgentFlowConfig, runner: Runner, more: Sequence[AgentFlowConfig] | None) -> dict[str, Runner]:
    """name → started runner: `runner` (for `first`), then one per config in `more`."""
    flows = {flow_name(first): runner}
    for config, name in zip(more or [], _names([first, *(more or [])])[1:]):
        flows[name] = Runner(config).start()
    return flows


def describe_flows(flows: dict[str, Runner]) -> list[dict[str, Any]]:
    return [
        {"name": name, "mode": runner.mode, "source": runner.config.source, "default": index == 0}
        for index, (name, runner) in enumerate(flows.items())
    ]


def flow_runner(flows: dict[str, Runner], name: str) -> Runner:
    if name not in flows:
        raise RequestError(404, "FlowNotFound", f"no flow named {name!r}; flows: {', '.join(flows)}")
    return flows[name]
