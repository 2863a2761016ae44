"""Per-event orchestration overrides, resolved and validated in the driver.

`runner.dispatch(event, **overrides)` and `event.metadata["orchestration_override"] = MODE`
change the orchestration of one dispatch. The driver validates them against the runner's
config (a `ConfigError` before any agent runs) and sends the resulting `OrchestrationConfig`
with the dispatch; the supervisor runs that mode over the same agent actors. Validated settings
are cached per distinct override set, so a repeated override costs a dict lookup; a dispatch
without overrides costs nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from actorflow.config import AgentFlowConfig, OrchestrationConfig
from actorflow.events import Event

__all__ = ["OVERRIDE_KEY", "SettingsResolver"]

OVERRIDE_KEY = "orchestration_override"
"""Event metadata key (the seed's) that switches the mode for that event."""

_CACHE_SIZE = 256


class SettingsResolver:
    """Turns (event, overrides) into the `OrchestrationConfig` of one dispatch, or None for the file's."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._config: AgentFlowConfig | None = None
        self._cache: dict[Any, OrchestrationConfig] = {}

    def settings_for(
        self, config: AgentFlowConfig, event: Event, overrides: Mapping[str, Any]
    ) -> OrchestrationConfig | None:
        wanted = {name: value for name, value in overrides.items() if value is not None}
        mode = event.metadata.get(OVERRIDE_KEY)
        if mode and "mode" not in wanted:  # an explicit keyword wins over the event's metadata
            wanted["mode"] = mode
        if not wanted:
            return None
        key = _freeze(wanted)
        with self._lock:
            if config is not self._config:  # the runner's config changed (e.g. agent options)
                self._config, self._cache = config, {}
            settings = self._cache.get(key) if key is not None else None
        if settings is not None:
            return settings
        settings = config.with_overrides(**wanted).orchestration  # ConfigError when invalid
        if key is not None:
            with self._lock:
                if len(self._cache) >= _CACHE_SIZE:
                    self._cache.clear()
                self._cache[key] = settings
        return settings


def _freeze(values: Mapping[str, Any]) -> Any:
    """A hashable key for `values`, or None when a value cannot be one."""
    try:
        key = frozenset((name, tuple(v) if isinstance(v, list) else v) for name, v in values.items())
        hash(key)
        return key
    except TypeError:
        return None
