"""Loading agentflow.toml: reading, environment layers, overrides, and `AgentFlowConfig`.

`load_config(path)` reads the TOML file, layers `environments/<env>.toml` over it when an
environment is selected, applies the CLI-style orchestration overrides and validates the result.
Every mistake (file, layer or override) becomes one `ConfigError` whose message is a single
readable paragraph naming the file, the dotted key path, the bad value and what is allowed.
"""

from __future__ import annotations

import copy
import logging
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from actorflow.config.llm import captured_env
from actorflow.config.compat import ignored_warnings, map_error_routing, strip_ignored
from actorflow.config.messages import Origins, Problem, config_error, describe_errors, suggest, toml_key
from actorflow.config.schema import OVERRIDABLE, AgentConfig, AgentFlowSchema
from actorflow.exceptions import ConfigError

__all__ = ["AgentFlowConfig", "load_config"]

logger = logging.getLogger(__name__)


class AgentFlowConfig(AgentFlowSchema):
    """A whole agentflow.toml. `AgentFlowConfig()` is valid: route mode, no agents."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str | None = None,
                  overrides: Mapping[str, Any] | None = None) -> AgentFlowConfig:
        """Validate a parsed agentflow.toml (as a dict) like `load_config` does a file."""
        return _load_layers(source or "<config>", copy.deepcopy(dict(data)), None, overrides,
                            source=source)

    def with_overrides(self, **overrides: Any) -> AgentFlowConfig:
        """A new validated copy with orchestration overrides (names: `OVERRIDABLE`)."""
        data = self.model_dump()
        origins = _apply_overrides(data, overrides)
        cfg = _validate(data, where=f"{self._source or '<config>'} with overrides",
                        origins=origins, source=self._source, warnings=self._warnings, env=self._env)
        cfg._flows = dict(self._flows)
        return cfg

    def with_runtime_options(self, **options: Any) -> AgentFlowConfig:
        """A new validated copy with `[runtime]` keys overridden by `options` (e.g. `journal`)."""
        data = self.model_dump()
        data["runtime"] = {**data["runtime"], **options}
        origins = {("runtime", key): (f'runtime option "{key}"', None) for key in options}
        cfg = _validate(data, where=f"{self._source or '<config>'} with runtime options", origins=origins,
                        source=self._source, warnings=self._warnings, env=self._env)
        cfg._flows = dict(self._flows)
        return cfg

    def with_agent_options(self, name: str, **options: Any) -> AgentFlowConfig:
        """A new validated copy with `[agents.NAME]` keys overridden by `options`."""
        for key in options:
            if key not in AgentConfig.model_fields:
                hint = suggest(key, AgentConfig.model_fields)
                raise ConfigError(f'Unknown option "{key}" for agent "{name}"{hint}.',
                                  path=self._source, key=f"agents.{toml_key(name)}.{key}")
        data = self.model_dump()
        data["agents"][name] = {**data["agents"].get(name, {}), **options}
        origins = {("agents", name, key): (f'option "{key}" of agent "{name}"', None)
                   for key in options}
        cfg = _validate(data, where=f"{self._source or '<config>'} with options for agent "
                        f'"{name}"', origins=origins, source=self._source,
                        warnings=self._warnings, env=self._env)
        cfg._flows = dict(self._flows)
        return cfg


def load_config(path: str | os.PathLike[str], *, env: str | None = None,
                overrides: Mapping[str, Any] | None = None,
                _including: tuple[Path, ...] = ()) -> AgentFlowConfig:
    """Load, layer and validate an agentflow.toml.

    `env` (else `$ACTORFLOW_ENV`) selects `<dir of path>/environments/<env>.toml`, deep-merged
    over the base file (tables merge; scalars and lists replace). `overrides` (names:
    `OVERRIDABLE`; None values ignored) win over both. Raises ConfigError.
    """
    base = Path(path)
    raw = _read_toml(base)
    env = env if env is not None else os.environ.get("ACTORFLOW_ENV") or None
    layer = None
    if env:
        env_dir = base.parent / "environments"
        layer_path = env_dir / f"{env}.toml"
        if Path(env).name != env or not layer_path.is_file():
            names = sorted(p.stem for p in env_dir.glob("*.toml")) if env_dir.is_dir() else []
            raise ConfigError(
                f'Environment "{env}" has no layer file: {layer_path} does not exist '
                f"(available environments: {', '.join(names) or 'none'}).",
                path=str(layer_path))
        layer = (str(layer_path), _read_toml(layer_path))
    cfg = _load_layers(str(base), raw, layer, overrides, source=str(base))
    _load_flows(cfg, base, (*_including, base.resolve()))
    return cfg


def _load_flows(cfg: AgentFlowConfig, base: Path, including: tuple[Path, ...]) -> None:
    """Load every `[agents.NAME] flow` (relative to `base`); a flow including itself is a ConfigError."""
    for name, agent in cfg.agents.items():
        if not agent.flow:
            continue
        path = (base.parent / agent.flow).resolve()
        key = f"agents.{toml_key(name)}.flow"
        if path in including:
            chain = " → ".join(str(p.name) for p in (*including, path))
            raise ConfigError(f"Flow {base} includes itself through [{key[:-5]}] flow = "
                              f'"{agent.flow}": {chain}.', path=str(base), key=key)
        if not path.is_file():
            raise ConfigError(f'[{key[:-5]}] flow = "{agent.flow}" names no file: {path} does not '
                              "exist (the path is relative to the file naming it).",
                              path=str(base), key=key)
        cfg._flows[name] = load_config(path, env="", _including=including)  # layers: top file only


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fp:
            return tomllib.load(fp)
    except FileNotFoundError:
        raise ConfigError(f"Configuration file not found: {path}.", path=str(path)) from None
    except IsADirectoryError:
        raise ConfigError(f"Configuration path is a directory, not a file: {path}.",
                          path=str(path)) from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"Cannot read {path}: not UTF-8 text ({err.reason}).",
                          path=str(path)) from err
    except tomllib.TOMLDecodeError as err:
        text = str(err)
        where = re.search(r"\(at line (\d+), column (\d+)\)", text)
        if where:
            text = text[: where.start()].strip()
            at = f" at line {where[1]}, column {where[2]}"
        else:
            at = ""
        raise ConfigError(f"Invalid TOML in {path}{at}: {text}.", path=str(path)) from err


def _load_layers(label: str, raw: dict[str, Any], layer: tuple[str, dict[str, Any]] | None,
                 overrides: Mapping[str, Any] | None, *, source: str | None) -> AgentFlowConfig:
    warnings = ignored_warnings(label, raw)
    data = raw
    where = label
    if layer:
        warnings += ignored_warnings(*layer)
        data = _deep_merge(raw, layer[1])
        where += f" (with environment layer {layer[0]})"
    routing = strip_ignored(data)
    origins, problems = map_error_routing(data, routing)
    origins.update(_apply_overrides(data, overrides or {}))
    if any(value is not None for value in (overrides or {}).values()):
        where += " with overrides"
    for warning in warnings:
        logger.warning("%s", warning)
    return _validate(data, where=where, origins=origins, problems=problems, source=source,
                     warnings=warnings, layer=layer)


def _deep_merge(base: dict[str, Any], layer: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in layer.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _apply_overrides(data: dict[str, Any],
                     overrides: Mapping[str, Any]) -> dict[tuple[str, str], tuple[str, None]]:
    """Write the orchestration overrides into `data`; return their origins."""
    for name in overrides:
        if name not in OVERRIDABLE:
            hint = suggest(name, OVERRIDABLE)
            raise ConfigError(f'Unknown orchestration override "{name}"{hint}; allowed: '
                              f"{', '.join(OVERRIDABLE)}.", key=name)
    orch = data.setdefault("orchestration", {})
    origins: dict[tuple[str, str], tuple[str, None]] = {}
    for name, value in overrides.items():
        if value is None or not isinstance(orch, dict):
            continue
        if name in ("collaborative_agents", "sequential_agents"):
            if isinstance(value, str):
                value = [part.strip() for part in value.split(",") if part.strip()]
            elif isinstance(value, tuple):
                value = list(value)
        orch[name] = value
        origins[("orchestration", name)] = (f"override {name}", None)
    return origins


def _validate(data: dict[str, Any], *, where: str, origins: Origins | None = None,
              problems: Sequence[Problem] = (), source: str | None = None,
              warnings: Sequence[str] = (),
              layer: tuple[str, Mapping[str, Any]] | None = None,
              env: Mapping[str, str] | None = None) -> AgentFlowConfig:
    """Validate `data`; turn every problem into one ConfigError paragraph.

    `env`: the environment LLM defaults come from (a derived config keeps its original's);
    None reads this process's (`load_config` resolves defaults where the file is loaded)."""
    found = list(problems)
    try:
        cfg = AgentFlowConfig.model_validate(data)
    except ValidationError as err:
        found += describe_errors(err, AgentFlowConfig, origins or {})
    if found:
        raise config_error(found, where=where, layer=layer, source=source) from None
    cfg._source = source
    cfg._warnings = list(warnings)
    cfg._env = captured_env() if env is None else dict(env)
    return cfg


