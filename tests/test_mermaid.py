"""Mermaid rendering: the structure of each pattern's diagram, ids, labels and files."""

from __future__ import annotations

import re

import pytest

from actorflow.config import AgentFlowConfig
from actorflow.mermaid import render, write

pytestmark = pytest.mark.timeout(30)

NODE_RE = re.compile(r'^\s*(\w+)(?:\[|\(\[|\{\{|\{)"(.*?)"(?:\]|\]\)|\}\}|\})\s*$')
EDGE_RE = re.compile(r'^\s*(\w+) (?:-->|-\.->)(?:\|"(.*?)"\|)? (\w+)\s*$')

AGENTS = {
    "analyzer": {"role": "data_analyzer"},
    "validator": {"role": "data_validator"},
    "data-loader": {},
    "my agent": {"role": "helper"},
    "off": {"enabled": False},
}


def config(**orchestration) -> AgentFlowConfig:
    return AgentFlowConfig.from_dict({"agent_flow": {"name": "demo"},
                                      "orchestration": orchestration, "agents": AGENTS})


class Diagram:
    """The parsed diagram: labels by node id, edges in order, subgraph of each node."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.labels: dict[str, str] = {}
        self.edges: list[tuple[str, str, str]] = []
        self.subgraph: dict[str, str | None] = {}
        current = None
        for line in text.splitlines():
            if m := re.match(r'\s*subgraph (\w+)\["(.*)"\]', line):
                current = m[2]
            elif line.strip() == "end":
                current = None
            elif m := EDGE_RE.match(line):
                self.edges.append((m[1], m[3], m[2] or ""))
            elif m := NODE_RE.match(line):
                self.labels[m[1]] = m[2]
                self.subgraph[m[1]] = current

    def node(self, name: str, subgraph: str | None = None) -> str:
        """Id of the (first) node whose label starts with `name`, optionally in `subgraph`."""
        for node_id, label in self.labels.items():
            if label.split("<br/>")[0] == name and (subgraph is None
                                                     or self.subgraph[node_id] == subgraph):
                return node_id
        raise AssertionError(f"no node {name!r} in\n{self.text}")

    def targets(self, source: str) -> list[str]:
        return [t for s, t, _ in self.edges if s == source]

    def sources(self, target: str) -> list[str]:
        return [s for s, t, _ in self.edges if t == target]


def test_route_has_a_router_with_an_edge_to_each_enabled_agent():
    d = Diagram(render(config()))
    assert d.text.startswith("flowchart TD\n")
    router = d.node("Event router")
    assert d.targets(d.node("Event")) == [router]
    assert d.targets(router) == [d.node(n) for n in ("analyzer", "validator", "data-loader",
                                                     "my agent")]
    assert "off" not in {label.split("<br/>")[0] for label in d.labels.values()}


def test_route_without_agents_points_at_code_registration():
    d = Diagram(render(AgentFlowConfig()))
    assert d.targets(d.node("Event router")) == [d.node("agents registered in code")]


def test_collaborative_fans_out_and_in_to_a_merge_node():
    d = Diagram(render(config(mode="collaborative", collaborative_agents=["validator",
                                                                          "analyzer"])))
    agents = [d.node("validator"), d.node("analyzer")]
    merge = d.node("merge changes (list order)")
    assert d.targets(d.node("Event")) == agents
    assert d.sources(merge) == agents
    assert d.targets(merge) == [d.node("Result")]
    assert "failure_threshold = 0.5" in d.labels[merge]


def test_collaborative_with_empty_list_draws_every_enabled_agent():
    d = Diagram(render(config(mode="collaborative")))
    assert d.targets(d.node("Event")) == [d.node(n) for n in ("analyzer", "validator",
                                                              "data-loader", "my agent")]


def test_sequential_is_a_chain_in_list_order():
    d = Diagram(render(config(mode="sequential",
                              sequential_agents=["data-loader", "analyzer", "validator"])))
    chain = [d.node("Event"), d.node("data-loader"), d.node("analyzer"), d.node("validator"),
             d.node("Result")]
    assert [(s, t) for s, t, _ in d.edges] == list(zip(chain, chain[1:]))


def test_sequential_repeating_an_agent_gets_distinct_nodes():
    d = Diagram(render(config(mode="sequential", sequential_agents=["analyzer", "validator",
                                                                    "analyzer"])))
    ids = [t for _, t, _ in d.edges][:-1]
    assert len(ids) == len(set(ids)) == 3
    assert [d.labels[i].split("<br/>")[0] for i in ids] == ["analyzer", "validator", "analyzer"]


def test_loop_has_a_back_edge_labelled_with_the_completion_condition():
    d = Diagram(render(config(mode="loop", loop_agent="analyzer", max_iterations=7)))
    agent = d.node("analyzer")
    back = [(s, label) for s, t, label in d.edges if t == agent and s != d.node("Event")]
    assert len(back) == 1
    assert "loop_complete" in back[0][1] and "max_iterations = 7" in back[0][1]
    exits = [label for s, t, label in d.edges if t == d.node("Result")]
    assert exits and "loop_complete" in exits[0] and "max_iterations = 7" in exits[0]


def test_mixed_has_a_collaborative_then_a_sequential_phase():
    d = Diagram(render(config(mode="mixed", collaborative_agents=["analyzer", "validator"],
                              sequential_agents=["analyzer", "my agent"])))
    text = d.text
    assert text.index("collaborative phase") < text.index("sequential phase")
    fan = [d.node("analyzer", "collaborative phase"), d.node("validator", "collaborative phase")]
    merge = d.node("merge changes (list order)")
    assert d.subgraph[merge] == "collaborative phase"
    assert d.targets(d.node("Event")) == fan
    assert d.sources(merge) == fan
    seq = [d.node("analyzer", "sequential phase"), d.node("my agent", "sequential phase")]
    assert d.targets(merge) == [seq[0]]
    assert d.targets(seq[0]) == [seq[1]]
    assert d.targets(seq[1]) == [d.node("Result")]


def test_labels_carry_roles_and_ids_are_sanitized():
    text = render(config(mode="sequential", sequential_agents=["my agent", "data-loader"]))
    d = Diagram(text)
    assert d.labels[d.node("my agent")] == "my agent<br/>(helper)"
    assert d.labels[d.node("data-loader")] == "data-loader"
    assert all(re.fullmatch(r"[A-Za-z]\w*", node_id) for node_id in d.labels)


def test_quotes_in_labels_are_escaped():
    cfg = AgentFlowConfig.from_dict({"agents": {'say "hi"': {"role": "a<b>"}}})
    d = Diagram(render(cfg))
    assert list(d.labels.values())[-1] == "say #quot;hi#quot;<br/>(a#lt;b#gt;)"


def test_direction_lr():
    assert render(config(), direction="LR").startswith("flowchart LR\n")


def test_write_saves_mmd_and_md(tmp_path):
    cfg = config(mode="loop", loop_agent="analyzer")
    path = write(cfg, tmp_path / "out")
    assert path == tmp_path / "out" / "demo-loop.mmd"
    assert path.read_text() == render(cfg)
    markdown = (tmp_path / "out" / "demo-loop.md").read_text()
    assert f"```mermaid\n{render(cfg)}```" in markdown


def test_write_sanitizes_the_file_name(tmp_path):
    cfg = AgentFlowConfig.from_dict({"agent_flow": {"name": "../my flow"}})
    assert write(cfg, tmp_path).name == "my-flow-route.mmd"
