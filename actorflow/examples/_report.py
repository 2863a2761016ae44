"""Shared helpers for the publishing agents: where reports go, and small markdown builders."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

DEFAULT_OUTPUT_DIR = "actorflow-output"


def output_file(data: Mapping[str, Any], session_id: str, prefix: str, suffix: str) -> Path:
    """`<output_dir>/<prefix>-<session>.<suffix>`, creating `output_dir` (event data) if missing."""
    out_dir = data.get("output_dir") or DEFAULT_OUTPUT_DIR
    if not isinstance(out_dir, str):
        raise ValueError(f"'output_dir' must be a path string, got {out_dir!r}")
    path = Path(out_dir).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    safe_session = re.sub(r"[^A-Za-z0-9_.-]+", "_", session_id).strip("._") or "session"
    return path / f"{prefix}-{safe_session}.{suffix}"


def write_text(path: Path, text: str) -> dict[str, Any]:
    """Write `text` (UTF-8) and return the `publish_result` shape: `{path, bytes}`."""
    payload = text.encode("utf-8")
    path.write_bytes(payload)
    return {"path": str(path.resolve()), "bytes": len(payload)}


def money(value: float) -> str:
    return f"{value:,.2f}"


def signed_pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1f}%"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
