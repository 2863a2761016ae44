"""The five orchestration patterns, one module each, and the registry of their mode specs."""

from __future__ import annotations

from actorflow.patterns import collaborative, loop, mixed, route, sequential
from actorflow.patterns.base import Invocation, ModeSpec, Pattern, PatternOutcome

__all__ = ["MODE_SPECS", "Invocation", "ModeSpec", "Pattern", "PatternOutcome", "mode_spec"]

MODE_SPECS: dict[str, ModeSpec] = {
    module.SPEC.name: module.SPEC for module in (route, collaborative, sequential, loop, mixed)
}


def mode_spec(mode: str) -> ModeSpec:
    try:
        return MODE_SPECS[mode]
    except KeyError:
        raise ValueError(f"unknown orchestration mode {mode!r}; known: {', '.join(MODE_SPECS)}") from None
