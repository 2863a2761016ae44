"""Configuration problems as readable text: pydantic errors become one ConfigError paragraph.

A problem is `(location, sentence)`: the location (a key path tuple) says which file set the
key when an environment layer is in use, or is None for a value that came from an override.
"""

from __future__ import annotations

import difflib
import json
import re
import types
from collections.abc import Mapping
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from actorflow.exceptions import ConfigError

Loc = tuple[Any, ...]
Problem = tuple[Union[Loc, None], str]
Origins = Mapping[Loc, tuple[str, Union[Loc, None]]]
"""Where a value at a schema location really came from: (label for messages, file location)."""


class Problems(ValueError):
    """Cross-field problems found by a model validator: (location, message) pairs."""

    def __init__(self, problems: list[tuple[Loc, str]]) -> None:
        super().__init__("; ".join(f"{dotted(loc)}: {msg}" for loc, msg in problems))
        self.problems = problems


def describe_errors(err: ValidationError, root: type[BaseModel], origins: Origins) -> list[Problem]:
    """One problem per pydantic error of validating `root`, phrased for a TOML author."""
    out: list[Problem] = []
    for e in err.errors():
        loc, kind = tuple(e["loc"]), e["type"]
        error = (e.get("ctx") or {}).get("error")
        if isinstance(error, Problems):
            out += [(p_loc, f"{dotted(p_loc)}: {msg}") for p_loc, msg in error.problems]
            continue
        label, file_loc = _label(loc, origins)
        if kind == "extra_forbidden":
            fields = _fields_at(root, loc[:-1])
            hint = suggest(str(loc[-1]), fields, prefix=dotted(loc[:-1]))
            if not hint and fields:
                hint = f" (valid keys here: {', '.join(fields)})"
            out.append((file_loc, f"unknown key {label}{hint}"))
        else:
            out.append((file_loc, f"{label} = {quote(e['input'])} is not allowed: "
                                  f"{_allowed(root, e, loc)}"))
    return out


def config_error(problems: list[Problem], *, where: str, source: str | None,
                 layer: tuple[str, Mapping[str, Any]] | None = None) -> ConfigError:
    """The ConfigError for `problems`; those set by the environment layer name its file."""
    in_layer = [bool(layer) and loc is not None and _has_path(layer[1], loc)
                for loc, _ in problems]
    path = source
    if layer and all(in_layer):
        where = path = layer[0]
        texts = [text for _, text in problems]
    else:
        texts = [text + (f" (set in {layer[0]})" if flag and layer else "")
                 for (_, text), flag in zip(problems, in_layer)]
    count = f" ({len(texts)} problems)" if len(texts) > 1 else ""
    first = problems[0][0]
    return ConfigError(f"Invalid configuration in {where}{count}: {'; '.join(texts)}.",
                       path=path, key=dotted(first) if first else None)


def suggest(word: str, choices, *, prefix: str = "", quote_char: str = "") -> str:
    """' (did you mean X?)' for the closest of `choices`, or '' when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if not close:
        return ""
    if quote_char:
        return f" (did you mean {quote_char}{close[0]}{quote_char}?)"
    return f" (did you mean {prefix + '.' if prefix else ''}{close[0]}?)"


def toml_key(part: Any) -> str:
    """`part` as a TOML key: bare when it can be, quoted otherwise."""
    text = str(part)
    return text if re.fullmatch(r"[A-Za-z0-9_-]+", text) else json.dumps(text)


def dotted(loc: Loc) -> str:
    """A location as a dotted TOML key path, list indexes in brackets: `a.b[0]`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f"{'.' if out else ''}{toml_key(part)}"
    return out


def quote(value: Any) -> str:
    """A value as the author wrote it (TOML-like, shortened)."""
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


def _has_path(raw: Any, loc: Loc) -> bool:
    for part in loc:
        if isinstance(part, int) and isinstance(raw, list):
            return True
        if not isinstance(raw, Mapping) or part not in raw:
            return False
        raw = raw[part]
    return True


def _label(loc: Loc, origins: Origins) -> tuple[str, Loc | None]:
    """How to name `loc` in a message, and where in the files it came from."""
    for cut in range(len(loc), 0, -1):
        if loc[:cut] in origins:
            label, file_loc = origins[loc[:cut]]
            rest = dotted(loc[cut:])
            return (f"{label}{'.' if rest and not rest.startswith('[') else ''}{rest}", file_loc)
    return dotted(loc), loc


_TYPE_TEXT = {"int": "a whole number", "float": "a number", "bool": "true or false",
              "string": "a string", "list": "a list", "dict": "a table", "model": "a table"}


def _allowed(root: type[BaseModel], error: Mapping[str, Any], loc: Loc) -> str:
    """What the key at `loc` allows, for the message about a bad value."""
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return _range_text(_constraints_at(root, loc)) or error["msg"]
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", ctx.get("expected", ""))
        hint = suggest(str(error["input"]), choices, quote_char='"')
        return f"must be one of {', '.join(json.dumps(c) for c in choices)}{hint}"
    if kind in ("string_too_short", "too_short"):
        return "must not be empty"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    head = kind.split("_")[0]
    if head in _TYPE_TEXT and kind.endswith(("_type", "_parsing", "_from_float")):
        return f"must be {_TYPE_TEXT[head]}"
    return error["msg"][:1].lower() + error["msg"][1:]


def _range_text(bounds: Mapping[str, Any]) -> str:
    low = ("at least", bounds["ge"]) if "ge" in bounds else (
        ("greater than", bounds["gt"]) if "gt" in bounds else None)
    high = ("at most", bounds["le"]) if "le" in bounds else (
        ("less than", bounds["lt"]) if "lt" in bounds else None)
    if low and high and low[0] == "at least" and high[0] == "at most":
        return f"must be between {_num(low[1])} and {_num(high[1])}"
    parts = [f"{word} {_num(n)}" for word, n in (b for b in (low, high) if b)]
    return "must be " + " and ".join(parts) if parts else ""


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _unwrap(tp: Any) -> tuple[Any, list[Any]]:
    """Strip Annotated/Optional from a type; return it and the Annotated metadata found."""
    meta: list[Any] = []
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp, *extra = get_args(tp)
            for item in extra:
                meta += item.metadata if isinstance(item, FieldInfo) else [item]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp, meta
            tp = args[0]
        else:
            return tp, meta


def _walk(root: type[BaseModel], loc: Loc) -> tuple[Any, list[Any]]:
    """The type (and its constraint metadata) the schema expects at `loc`."""
    tp: Any = root
    meta: list[Any] = []
    for part in loc:
        tp, _ = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(str(part))
            if field is None:
                return None, []
            tp, meta = field.annotation, list(field.metadata)
        elif get_origin(tp) in (dict, list):
            tp, meta = get_args(tp)[-1], []
        else:
            return None, []
    tp, extra = _unwrap(tp)
    return tp, meta + extra


def _fields_at(root: type[BaseModel], loc: Loc) -> list[str]:
    tp, _ = _walk(root, loc)
    return list(tp.model_fields) if isinstance(tp, type) and issubclass(tp, BaseModel) else []


def _constraints_at(root: type[BaseModel], loc: Loc) -> dict[str, Any]:
    _, meta = _walk(root, loc)
    return {name: getattr(m, name) for m in meta for name in ("ge", "gt", "le", "lt")
            if getattr(m, name, None) is not None}
