"""The five orchestration patterns, one module each, and the registry that picks one by mode."""

from __future__ import annotations

from actorflow.patterns import collaborative, loop, mixed, route, sequential
from actorflow.patterns.base import AgentCaller, Pattern, PatternContext

__all__ = ["PATTERNS", "AgentCaller", "Pattern", "PatternContext", "get_pattern"]

PATTERNS: dict[str, Pattern] = {
    "route": route.run,
    "collaborative": collaborative.run,
    "sequential": sequential.run,
    "loop": loop.run,
    "mixed": mixed.run,
}


def get_pattern(mode: str) -> Pattern:
    try:
        return PATTERNS[mode]
    except KeyError:
        raise ValueError(f"unknown orchestration mode {mode!r}; known: {', '.join(PATTERNS)}") from None
