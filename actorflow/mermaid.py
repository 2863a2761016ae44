"""Mermaid flowcharts of the orchestration a config describes (AgenticGoKit's `--visualize`).

`render(cfg)` returns the diagram text; `write(cfg, out_dir)` saves it as
`<name>-<mode>.mmd` plus a `.md` that shows it in a ```mermaid fence.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from actorflow.config import AgentFlowConfig

__all__ = ["Direction", "render", "write"]

Direction = Literal["TD", "LR"]

_SHAPES = {"rect": ('["', '"]'), "stadium": ('(["', '"])'), "rhombus": ('{"', '"}'),
           "hexagon": ('{{"', '"}}')}


def render(cfg: AgentFlowConfig, *, direction: Direction = "TD") -> str:
    """A Mermaid `flowchart` of `cfg`'s orchestration mode, agents labelled with their role."""
    diagram = _Diagram(cfg, direction)
    _BUILDERS[cfg.orchestration.mode](diagram)
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


class _Diagram:
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

    def text(self) -> str:
        return "\n".join(self.nodes + self.edges) + "\n"


def _escape(text: str) -> str:
    """Make user text safe inside a quoted Mermaid label (one line, entity codes)."""
    text = " ".join(text.splitlines())
    for char, code in (("#", "#35;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;")):
        text = text.replace(char, code)
    return text


def _event(d: _Diagram) -> str:
    return d.node("event", "Event", "stadium")


def _fan_out_in(d: _Diagram, source: str, names: list[str], prefix: str) -> str:
    """Parallel agents from `source` into a merge node; return the merge node's id."""
    agents = [d.agent(name, prefix) for name in names]
    threshold = d.cfg.orchestration.failure_threshold
    merge = d.node("merge", f"merge (list order)<br/>failure_threshold = {threshold}", "hexagon")
    for agent in agents:
        d.edge(source, agent)
    for agent in agents:
        d.edge(agent, merge)
    return merge


def _route(d: _Diagram) -> None:
    event = _event(d)
    router = d.node("router", "Event router<br/>metadata.route or target", "rhombus")
    d.edge(event, router)
    names = d.cfg.enabled_agents()
    for name in names:
        d.edge(router, d.agent(name))
    if not names:
        d.edge(router, d.node("registered", "agents registered in code"), dotted=True)


def _collaborative(d: _Diagram) -> None:
    event = _event(d)
    names = d.cfg.orchestration.collaborative_agents or d.cfg.enabled_agents()
    merge = _fan_out_in(d, event, names, "agent")
    d.edge(merge, d.node("result", "Result", "stadium"))


def _sequential(d: _Diagram) -> None:
    event = _event(d)
    steps = [d.agent(name) for name in d.cfg.orchestration.sequential_agents]
    d.chain([event, *steps, d.node("result", "Result", "stadium")])


def _loop(d: _Diagram) -> None:
    orch = d.cfg.orchestration
    event = _event(d)
    agent = d.agent(orch.loop_agent or "")
    check = d.node("check", "loop_complete?", "rhombus")
    result = d.node("result", "Result", "stadium")
    d.chain([event, agent, check])
    d.edge(check, agent, f"no: repeat until loop_complete / max_iterations = {orch.max_iterations}")
    d.edge(check, result, f"loop_complete or max_iterations = {orch.max_iterations}")


def _mixed(d: _Diagram) -> None:
    orch = d.cfg.orchestration
    event = _event(d)
    d.subgraph("collaborative_phase", "collaborative phase")
    merge = _fan_out_in(d, event, orch.collaborative_agents, "collab")
    d.end()
    d.subgraph("sequential_phase", "sequential phase")
    steps = [d.agent(name, "seq") for name in orch.sequential_agents]
    d.end()
    d.chain([merge, *steps, d.node("result", "Result", "stadium")])


_BUILDERS = {"route": _route, "collaborative": _collaborative, "sequential": _sequential,
             "loop": _loop, "mixed": _mixed}
