"""How `actorflow run` shows a dispatch while it runs.

- `--stream`: one line per `DispatchUpdate` (`--json`: one JSON object per line).
- On a terminal, plain `run`: a live table (with `rich`) of each agent's state and elapsed
  time, redrawn as updates arrive and ticking while agents run.
- Otherwise (output piped or redirected): no live display; the summary is printed as before.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, Any

from actorflow.events import DispatchResult
from actorflow.updates import DispatchUpdate

__all__ = ["print_updates", "show_live", "AgentBoard"]


def print_updates(updates: Iterable[DispatchUpdate], out: IO[str], *, json_lines: bool) -> DispatchResult | None:
    """Print each update as a line as it arrives; return the dispatch's result."""
    result = None
    for update in updates:
        line = json.dumps(update.to_dict(), default=str) if json_lines else update.describe()
        print(line, file=out, flush=True)
        if update.kind == "dispatch_finished":
            result = update.result
    return result


def show_live(updates: Iterable[DispatchUpdate], console: Any = None) -> DispatchResult | None:
    """A live `rich` table of the agents while the dispatch runs; return its result."""
    from rich.live import Live

    board = AgentBoard()
    with Live(board, console=console, refresh_per_second=8):
        for update in updates:
            board.apply(update)
    return board.result


@dataclass(slots=True)
class _Row:
    state: str
    attempt: int
    started: float
    elapsed: float | None = None
    detail: str = ""


class AgentBoard:
    """Each agent's latest state; a rich renderable (re-rendered on every refresh, so the
    elapsed time of running agents ticks)."""

    def __init__(self) -> None:
        self.rows: dict[str, _Row] = {}
        self.result: DispatchResult | None = None
        self._started = time.monotonic()

    def apply(self, update: DispatchUpdate) -> None:
        agent = update.agent or ""
        if update.kind == "agent_started":
            row = self.rows.get(agent)
            self.rows[agent] = _Row("running", (row.attempt + 1) if row else 1, time.monotonic())
        elif update.kind == "agent_finished" and update.run is not None:
            run = update.run
            self.rows[agent] = _Row(run.status, run.attempt, time.monotonic(), run.duration, run.error or "")
        elif update.kind == "dispatch_finished":
            self.result = update.result

    def __rich__(self) -> Any:
        from rich.table import Table

        now = time.monotonic()
        title = f"dispatch: {now - self._started:.1f}s"
        if self.result is not None:
            title = f"{'ok' if self.result.ok else 'FAILED'}: {self.result.mode} in {self.result.duration:.2f}s"
        table = Table(title=title, title_justify="left")
        for column in ("agent", "state", "elapsed", "attempt", "detail"):
            table.add_column(column, justify="right" if column in ("elapsed", "attempt") else "left")
        styles = {"ok": "green", "running": "yellow", "skipped": "dim", "cancelled": "magenta"}
        for agent, row in self.rows.items():
            elapsed = row.elapsed if row.elapsed is not None else now - row.started
            style = styles.get(row.state, "red")
            table.add_row(agent, f"[{style}]{row.state}[/]", f"{elapsed:.2f}s", str(row.attempt), row.detail[:60])
        return table
