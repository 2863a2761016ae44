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
        role = self.cfg.agent(name).role
        label = _escape(name) + (f"<br/>({_escape(role)})" if role else "")
        return self.node(f"{prefix}_{name}", label)

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
        threshold = self.cfg.orchestration.failure_threshold
        merge = self.node("merge", f"merge changes (list order)<br/>failure_threshold = {threshold}", "hexagon")
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
