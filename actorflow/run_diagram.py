"""Mermaid diagrams of what a dispatch actually ran (`DispatchResult.to_mermaid`).

- `flowchart`: one node per attempt (agent, status, duration, attempt), coloured by status;
  attempts that ran side by side (a collaborative phase) fan out from the same node, the rest
  follow each other in the order they ran.
- `gantt`: the attempts on a timeline (`AgentRun.started_at`, `duration`), one section per
  agent; failures are `crit`, cancelled ones `active`, successes `done`.

Failed, skipped and cancelled attempts are visible in both (status in every label).
Plain Python (no Ray): results can be drawn anywhere, e.g. from the HTTP API's JSON.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from actorflow.events import AgentRun, DispatchResult

__all__ = ["DiagramKind", "render_run"]

DiagramKind = Literal["flowchart", "gantt"]

_CLASSES = {
    "ok": "fill:#d4edda,stroke:#28a745",
    "error": "fill:#f8d7da,stroke:#dc3545",
    "timeout": "fill:#f8d7da,stroke:#dc3545",
    "circuit_open": "fill:#f8d7da,stroke:#dc3545,stroke-dasharray:3 3",
    "skipped": "fill:#eeeeee,stroke:#999999,stroke-dasharray:5 5",
    "cancelled": "fill:#fff3cd,stroke:#fd7e14",
    "interrupted": "fill:#cce5ff,stroke:#004085",
}
_GANTT_TAGS = {"ok": "done", "cancelled": "active", "skipped": "milestone"}


def render_run(result: DispatchResult, kind: DiagramKind = "flowchart") -> str:
    if kind == "flowchart":
        return _flowchart(result)
    if kind == "gantt":
        return _gantt(result)
    raise ValueError(f"to_mermaid takes 'flowchart' or 'gantt', got {kind!r}")


def _label(run: AgentRun) -> str:
    text = f"{_escape(run.agent)}<br/>{run.status} · {run.duration:.3f}s · attempt {run.attempt}"
    if run.iteration is not None:
        text += f" · iteration {run.iteration}"
    return text


def _parallel(result: DispatchResult, run: AgentRun) -> bool:
    return run.phase == "collaborative" or (result.mode == "collaborative" and run.phase is None)


def _flowchart(result: DispatchResult) -> str:
    status = "ok" if result.ok else "FAILED"
    lines = [
        "flowchart TD",
        f"    %% {result.mode} dispatch {_escape(result.event_id)}: {status} in {result.duration:.3f}s",
        '    event(["Event"])',
    ]
    edges: list[str] = []
    tails = ["event"]  # the nodes the next step follows
    group: list[str] = []  # a parallel group being built: its members follow `tails`
    last_of: dict[str, str] = {}  # agent → its latest node in the group (retries chain)
    for index, run in enumerate(result.runs, 1):
        node = f"r{index}"
        lines.append(f'    {node}["{_label(run)}"]:::{run.status}')
        if _parallel(result, run):
            source = last_of.get(run.agent)
            edges.extend(f"    {s} --> {node}" for s in ([source] if source else tails))
            if source:
                group.remove(source)
            group.append(node)
            last_of[run.agent] = node
            continue
        if group:
            tails, group, last_of = group, [], {}
        edges.extend(f"    {s} --> {node}" for s in tails)
        tails = [node]
    if group:
        tails = group
    outcome = "Result" if result.ok else f"Failed: {_escape(result.error or '')[:80]}"
    lines.append(f'    result(["{outcome}"]):::{"ok" if result.ok else "error"}')
    edges.extend(f"    {s} --> result" for s in tails)
    classes = [f"    classDef {name} {style}" for name, style in _CLASSES.items()]
    return "\n".join(lines + edges + classes) + "\n"


def _gantt(result: DispatchResult) -> str:
    status = "ok" if result.ok else "FAILED"
    lines = [
        "gantt",
        f"    title {result.mode} dispatch {_gantt_text(result.event_id)} ({status}, {result.duration:.3f}s)",
        "    dateFormat x",
        "    axisFormat %S.%L",
    ]
    by_agent: dict[str, list[tuple[int, AgentRun]]] = {}
    for index, run in enumerate(result.runs, 1):
        by_agent.setdefault(run.agent, []).append((index, run))
    for agent, runs in by_agent.items():
        lines.append(f"    section {_gantt_text(agent)}")
        for index, run in runs:
            start = round((run.started_at or 0.0) * 1000)
            end = start + max(1, round(run.duration * 1000))
            tag = _GANTT_TAGS.get(run.status, "crit")
            label = f"{_gantt_text(run.agent)} attempt {run.attempt} {run.status} {run.duration:.3f}s"
            if run.iteration is not None:
                label += f" iteration {run.iteration}"
            lines.append(f"    {label} :{tag}, r{index}, {start}, {end}")
    return "\n".join(lines) + "\n"


def _gantt_text(text: str) -> str:
    """Gantt task text cannot hold `:` `#` or `;` (they end the label or start a comment)."""
    return " ".join(text.splitlines()).replace(":", " ").replace("#", " ").replace(";", " ")


def _escape(text: str) -> str:
    """User text made safe inside a quoted Mermaid label (one line, entity codes)."""
    text = " ".join(text.splitlines())
    for char, code in (("#", "#35;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;")):
        text = text.replace(char, code)
    return text
