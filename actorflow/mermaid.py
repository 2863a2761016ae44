"""Mermaid flowcharts of the orchestration a config describes (AgenticGoKit's `--visualize`).

`render(cfg)` returns the diagram text; `write(cfg, out_dir)` saves it as
`<name>-<mode>.mmd` plus a `.md` that shows it in a ```mermaid fence.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from actorflow.config import AgentFlowConfig
from actorflow.patterns import mode_spec

__all__ = ["Diagram", "Direction", "render", "write"]

Direction = Literal["TD", "LR"]

_SHAPES = {"rect": ('["', '"]'), "stadium": ('(["', '"])'), "rhombus": ('{"', '"}'),
           "hexagon": ('{{"', '"}}')}


def render(cfg: AgentFlowConfig, *, direction: Direction = "TD") -> str:
    """A Mermaid `flowchart` of `cfg`'s orchestration mode, agents labelled with their role."""
    diagram = Diagram(cfg, direction)
    mode_spec(cfg.orchestration.mode).diagram(diagram)
    diagram.nested_flows(cfg)
    return diagram.text()


def write(cfg: AgentFlowConfig, out_dir: str | Path, *, direction: Direction = "TD") -> Path:
    """Write `<out_dir>/<agent_flow.name>-<mode>.mmd` and its `.md`; return the .mmd path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name, mode = cfg.agent_flow.name, cfg.orchestration.mode
    stem = f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name).strip('-.') or 'actorflow'}-{mode}"
    text = render(cfg, direction=direction)
    mmd = out / f"{stem}.mmd"
    mmd.write_text(text, encoding="utf-8")
    (out / f"{stem}.md").write_text(
        f"# {name}: {mode} orchestration\n\n```mermaid\n{text}```\n", encoding="utf-8")
    return mmd


class Diagram:
    """Node declarations (grouped in subgraphs where asked) first, then edges, in order added."""

    def __init__(self, cfg: AgentFlowConfig, direction: Direction) -> None:
        self.cfg = cfg
        self.nodes = [f"flowchart {direction}",
                      f"    %% {_escape(cfg.agent_flow.name)}: {cfg.orchestration.mode} "
                      "orchestration"]
        self.edges: list[str] = []
        self._ids: set[str] = set()
        self._indent = "    "
        self.agent_nodes: dict[str, list[str]] = {}
        """Agent name → the node ids drawn for it (a nested flow's nodes link to its subgraph)."""

    def node(self, base: str, label: str, shape: str = "rect") -> str:
        """Declare a node; return its id (`base` sanitized and made unique)."""
        stem = re.sub(r"\W", "_", base, flags=re.ASCII)
        stem = stem if stem[:1].isalpha() else f"n_{stem}"
        node_id, n = stem, 1
        while node_id in self._ids:
            n += 1
            node_id = f"{stem}_{n}"
        self._ids.add(node_id)
        opening, closing = _SHAPES[shape]
        self.nodes.append(f"{self._indent}{node_id}{opening}{label}{closing}")
        return node_id

    def agent(self, name: str, prefix: str = "agent") -> str:
        """Declare a node for the agent `name`, labelled with its role if it has one."""
        cfg = self.cfg.agent(name)
        role = f"flow: {cfg.flow}" if cfg.flow else cfg.role
        label = _escape(name) + (f"<br/>({_escape(role)})" if role else "")
        node_id = self.node(f"{prefix}_{name}", label)
        self.agent_nodes.setdefault(name, []).append(node_id)
        return node_id

    def nested_flows(self, cfg: AgentFlowConfig, path: str = "", links: dict[str, list[str]] | None = None) -> None:
        """Each nested flow as a subgraph of its agents, linked (dotted "runs") from its agent's
        node(s); deeper flows likewise from their agent inside the enclosing flow's subgraph."""
        links = self.agent_nodes if links is None else links
        for name, sub in cfg.flows.items():
            qualified = f"{path}{name}"
            orch = sub.orchestration
            sub_id = self.node_id(f"flow_{qualified}")
            join = f", join = {orch.join}" if orch.join != "all" else ""
            title = _escape(f"{qualified}: {sub.agent_flow.name} ({orch.mode}{join})")
            self.nodes.append(f'{self._indent}subgraph {sub_id}["{title}"]')
            outer, self._indent = self._indent, self._indent + "    "
            members = mode_spec(orch.mode).agents(orch, sub.enabled_agents()) or sub.enabled_agents()
            nodes = [self.node(f"{qualified}_{member}", _escape(member)) for member in members]
            self._indent = outer
            self.nodes.append(f"{self._indent}end")
            if orch.mode == "sequential":
                self.chain(nodes)
            for node in links.get(name, []):
                self.edge(node, sub_id, "runs", dotted=True)
            self.nested_flows(sub, f"{qualified}/", {member: [node] for member, node in zip(members, nodes)})

    def node_id(self, base: str, declare: bool = True) -> str:
        """The sanitized id for `base` (a subgraph's id: reserved when `declare`)."""
        stem = re.sub(r"\W", "_", base, flags=re.ASCII)
        stem = stem if stem[:1].isalpha() else f"n_{stem}"
        if declare:
            self._ids.add(stem)
        return stem

    def edge(self, source: str, target: str, label: str = "", dotted: bool = False) -> None:
        arrow = "-.->" if dotted else "-->"
        text = f'|"{_escape(label)}"|' if label else ""
        self.edges.append(f"    {source} {arrow}{text} {target}")

    def chain(self, ids: list[str]) -> None:
        for source, target in zip(ids, ids[1:]):
            self.edge(source, target)

    def subgraph(self, sub_id: str, title: str) -> None:
        self.nodes.append(f'    subgraph {sub_id}["{title}"]')
        self._indent = "        "

    def end(self) -> None:
        self.nodes.append("    end")
        self._indent = "    "

    def event(self) -> str:
        return self.node("event", "Event", "stadium")

    def result(self) -> str:
        return self.node("result", "Result", "stadium")

    def fan_out_in(self, source: str, names: list[str], prefix: str) -> str:
        """Parallel agents from `source` into a merge node; return the merge node's id."""
        agents = [self.agent(name, prefix) for name in names]
        orch = self.cfg.orchestration
        join = {"all": f"failure_threshold = {orch.failure_threshold}", "first": "join = first: the rest cancelled",
                "quorum": f"join = quorum {orch.quorum}: the rest cancelled"}[orch.join]
        reducers = f"<br/>reducers: {_escape(', '.join(f'{k} = {v}' for k, v in orch.merge.items()))}" if orch.merge else ""
        merge = self.node("merge", f"merge changes (list order)<br/>{join}{reducers}", "hexagon")
        for agent in agents:
            self.edge(source, agent)
        for agent in agents:
            self.edge(agent, merge)
        return merge

    def text(self) -> str:
        return "\n".join(self.nodes + self.edges) + "\n"


def _escape(text: str) -> str:
    """Make user text safe inside a quoted Mermaid label (one line, entity codes)."""
    text = " ".join(text.splitlines())
    for char, code in (("#", "#35;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;")):
        text = text.replace(char, code)
    return text
