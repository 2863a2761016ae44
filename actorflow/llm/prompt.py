"""The messages an LLM agent sends: system from `system_prompt` (and `role`), user from `prompt`."""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from typing import Any

from actorflow.config.llm import LLMSettings
from actorflow.llm.errors import LLMPromptError

__all__ = ["render_messages", "render_prompt"]


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)


def render_prompt(settings: LLMSettings, data: Mapping[str, Any]) -> str:
    """`prompt` with `{input}` = the data as JSON and `{KEY}` = data[KEY] (strings as they are,
    other values as JSON); `{{`/`}}` are literal braces. No template: the data as JSON."""
    whole = json.dumps(dict(data), default=str, ensure_ascii=False)
    if settings.prompt is None:
        return whole
    values: dict[str, str] = {}
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(settings.prompt) if f is not None]
    except ValueError as err:
        raise LLMPromptError(f'LLM agent "{settings.agent}": its prompt is not a valid template: {err}',
                             agent=settings.agent, provider=settings.provider) from None
    for field in fields:
        key = field.split(".", 1)[0].split("[", 1)[0]
        if key == "input" and "input" not in data:
            values["input"] = whole
        elif key in data:
            values[key] = _as_text(data[key])
        else:
            known = ", ".join(sorted(map(str, data))) or "none"
            raise LLMPromptError(
                f'LLM agent "{settings.agent}": its prompt uses {{{field}}} but the input data has '
                f'no key "{key}" (keys: {known}; {{input}} is the whole input as JSON)',
                agent=settings.agent, provider=settings.provider)
    try:
        return settings.prompt.format_map(values)
    except (KeyError, IndexError, AttributeError, ValueError) as err:
        raise LLMPromptError(f'LLM agent "{settings.agent}": cannot render its prompt: '
                             f"{type(err).__name__}: {err}", agent=settings.agent,
                             provider=settings.provider) from None


def render_messages(settings: LLMSettings, data: Mapping[str, Any]) -> list[dict[str, str]]:
    """The chat messages for one call: the system message (when there is one), then the user's."""
    system = settings.system_prompt
    if settings.role:
        system = f"Your role: {settings.role}.\n{system}" if system else f"Your role: {settings.role}."
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": render_prompt(settings, data)})
    return messages
