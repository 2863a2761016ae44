"""The values that flow through a dispatch: Event, State, AgentResult, AgentRun, DispatchResult.

Plain Python, no Ray import: these are pickled across actor boundaries and used by the
patterns, the runner, the HTTP layer and user handlers alike.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any, Literal

__all__ = ["Event", "State", "AgentResult", "AgentRun", "DispatchResult", "RunStatus"]

RunStatus = Literal["ok", "error", "timeout", "circuit_open", "skipped", "cancelled", "interrupted"]


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def _pack_time(value: datetime) -> datetime | int:
    """A UTC datetime crosses actor boundaries as integer microseconds since the epoch:
    exact, and several times cheaper for cloudpickle than a datetime and its tzinfo."""
    return (value - _EPOCH) // _MICROSECOND if getattr(value, "tzinfo", None) is timezone.utc else value


def _unpack_time(value: datetime | int) -> datetime:
    return _EPOCH + timedelta(microseconds=value) if isinstance(value, int) else value


class Event:
    """A message addressed to an agent: what to do (`data`) and how (`metadata`).

    Immutable from the caller's point of view: `data` and `metadata` are read-only views of
    private deep copies taken at construction.
    """

    __slots__ = ("_target", "_data", "_metadata", "_id", "_source", "_timestamp")

    def __init__(
        self,
        target: str,
        data: Mapping[str, Any] | None = None,
        metadata: Mapping[str, str] | None = None,
        *,
        id: str | None = None,
        source: str | None = None,
        timestamp: datetime | None = None,
    ) -> None:
        if not isinstance(target, str) or not target:
            raise ValueError(f"Event target must be a non-empty agent name, got {target!r}")
        self._target = target
        self._data = copy.deepcopy(dict(data or {}))
        self._metadata = {str(k): str(v) for k, v in (metadata or {}).items()}
        self._id = id or str(uuid.uuid4())
        self._source = source
        self._timestamp = timestamp or _utcnow()

    @property
    def target(self) -> str:
        return self._target

    @property
    def data(self) -> Mapping[str, Any]:
        return MappingProxyType(self._data)

    @property
    def metadata(self) -> Mapping[str, str]:
        return MappingProxyType(self._metadata)

    @property
    def id(self) -> str:
        return self._id

    @property
    def source(self) -> str | None:
        return self._source

    @property
    def timestamp(self) -> datetime:
        return self._timestamp

    @property
    def session_id(self) -> str:
        """`metadata["session_id"]`, or the event id when the metadata has none."""
        return self._metadata.get("session_id", self._id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self._id,
            "target": self._target,
            "data": copy.deepcopy(self._data),
            "metadata": dict(self._metadata),
            "source": self._source,
            "timestamp": self._timestamp.isoformat(),
        }

    def __reduce__(self):
        return (
            _rebuild_event,
            (self._target, self._data, self._metadata, self._id, self._source, _pack_time(self._timestamp)),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Event):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(self._id)

    def __repr__(self) -> str:
        return f"Event(target={self._target!r}, id={self._id!r}, data={self._data!r}, metadata={self._metadata!r})"


CALL_LENGTH = 8
"""Length of a `pack_call` tuple (what may follow it, e.g. a trace context, comes after)."""


def pack_call(event: Event, state: State) -> tuple:
    """What the supervisor sends an agent actor: the event's and the state's fields as one flat
    tuple of `CALL_LENGTH` plain values (Ray pickles it several times cheaper than the two
    objects). `unpack_call` inverts it."""
    if type(state) is not State:
        state = State._of(dict(state.data), dict(state.meta))
    return (*event.__reduce__()[1], state._data, state._meta)


def unpack_call(message: tuple) -> tuple[Event, State]:
    """The (event, state) of `pack_call`; the receiver owns the unpickled dicts."""
    *fields, data, meta = message
    return _rebuild_event(*fields), State._of(data, meta)


def _rebuild_event(target, data, metadata, id_, source, timestamp) -> Event:
    # Unpickling trusts the sender's copies: no second deep copy.
    event = Event.__new__(Event)
    event._target, event._data, event._metadata = target, data, metadata
    event._id, event._source, event._timestamp = id_, source, _unpack_time(timestamp)
    return event


class State:
    """The working state of a dispatch: `data` (any values) and `meta` (string values)."""

    __slots__ = ("_data", "_meta")

    def __init__(self, data: Mapping[str, Any] | None = None, meta: Mapping[str, str] | None = None) -> None:
        self._data: dict[str, Any] = dict(data or {})
        self._meta: dict[str, str] = {str(k): str(v) for k, v in (meta or {}).items()}

    @property
    def data(self) -> Mapping[str, Any]:
        """A read-only view of the data (no copy)."""
        return MappingProxyType(self._data)

    @property
    def meta(self) -> Mapping[str, str]:
        """A read-only view of the meta (no copy)."""
        return MappingProxyType(self._meta)

    # data
    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self._data[key] = value

    def pop(self, key: str, default: Any = None) -> Any:
        """Remove `key` from the data; return its value (`default` when absent)."""
        return self._data.pop(key, default)

    def keys(self) -> list[str]:
        return list(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    # meta
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        return self._meta.get(key, default)

    def set_meta(self, key: str, value: Any) -> None:
        """Meta values are strings; other values are stored as `str(value)`."""
        self._meta[str(key)] = value if isinstance(value, str) else str(value)

    def pop_meta(self, key: str, default: str | None = None) -> str | None:
        """Remove `key` from the meta; return its value (`default` when absent)."""
        return self._meta.pop(key, default)

    def meta_keys(self) -> list[str]:
        return list(self._meta)

    # whole-state operations
    def clone(self) -> State:
        """A deep copy: nothing the clone's holder does reaches this state."""
        return State._of(copy.deepcopy(self._data), dict(self._meta))

    def merge(self, other: State) -> None:
        """Copy other's data and meta over this state's (other wins a key conflict)."""
        self._data.update(other._data)
        self._meta.update(other._meta)

    def to_dict(self) -> dict[str, Any]:
        return {"data": copy.deepcopy(self._data), "meta": dict(self._meta)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> State:
        return cls(copy.deepcopy(dict(d.get("data") or {})), d.get("meta") or {})

    @classmethod
    def _of(cls, data: dict[str, Any], meta: dict[str, str]) -> State:
        state = cls.__new__(cls)
        state._data, state._meta = data, meta
        return state

    def __reduce__(self):
        return (_rebuild_state, (self._data, self._meta))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, State):
            return NotImplemented
        return self._data == other._data and self._meta == other._meta

    __hash__ = None  # mutable

    def __repr__(self) -> str:
        return f"State(data={self._data!r}, meta={self._meta!r})"


def _rebuild_state(data: dict[str, Any], meta: dict[str, str]) -> State:
    # A module-level function pickles by reference; the bound classmethod `State._of` would
    # be pickled by value (its code, on every actor call) by cloudpickle.
    return State._of(data, meta)


@dataclass(slots=True)
class AgentResult:
    """What an agent run produced, with its timings (the runtime fills them for bare returns)."""

    output_state: State
    """The agent's output state."""
    start_time: datetime = field(default_factory=_utcnow)
    """When the handler started (UTC)."""
    end_time: datetime = field(default_factory=_utcnow)
    """When the handler returned (UTC)."""
    duration: float = 0.0
    """Handler wall time in seconds."""
    usage: dict[str, int] | None = None
    """Model tokens of an LLM agent's run, `{"input_tokens", "output_tokens"}`, else None."""

    def __reduce__(self):
        # Flat: the state's dicts inline, so one global reference per result, not two.
        out, times = self.output_state, (_pack_time(self.start_time), _pack_time(self.end_time))
        if type(out) is not State:
            return (_rebuild_result, (out, *times, self.duration, self.usage))
        return (_rebuild_result_flat, self.flat())

    def flat(self) -> tuple:
        """Plain values only: what an agent actor sends back (Ray pickles a tuple of dicts,
        numbers and strings several times cheaper than the object). `rebuild_result(flat)`
        inverts it."""
        out = self.output_state
        if type(out) is not State:
            out = State._of(dict(out.data), dict(out.meta))
        return (out._data, out._meta, _pack_time(self.start_time), _pack_time(self.end_time), self.duration, self.usage)


def rebuild_result(flat: tuple) -> AgentResult:
    """The AgentResult of `AgentResult.flat()`."""
    return _rebuild_result_flat(*flat)


def _rebuild_result(output_state: State, start: datetime | int, end: datetime | int, duration: float,
                    usage: dict[str, int] | None = None) -> AgentResult:
    return AgentResult(output_state, _unpack_time(start), _unpack_time(end), duration, usage)


def _rebuild_result_flat(data: dict[str, Any], meta: dict[str, str], start: datetime | int, end: datetime | int,
                         duration: float, usage: dict[str, int] | None) -> AgentResult:
    return AgentResult(State._of(data, meta), _unpack_time(start), _unpack_time(end), duration, usage)


@dataclass(frozen=True, slots=True)
class AgentRun:
    """One attempt of one agent inside a dispatch, as recorded in `DispatchResult.runs`."""

    agent: str
    """The agent's name."""
    status: RunStatus
    """ok | error | timeout | circuit_open | skipped | cancelled | interrupted."""
    duration: float = 0.0
    """Wall time of the attempt as the supervisor saw it, in seconds."""
    error: str | None = None
    """The failure, as `ExceptionType: message`, or None."""
    attempt: int = 1
    """Attempt number, counting from 1 (retries add attempts)."""
    iteration: int | None = None
    """Loop iteration (from 1) in loop mode, else None."""
    phase: str | None = None
    """"collaborative" or "sequential" in mixed mode, else None."""
    usage: dict[str, int] | None = None
    """An LLM agent's tokens for this attempt, `{"input_tokens", "output_tokens"}`, else None."""
    started_at: float | None = None
    """Seconds from the dispatch's start to this attempt's start (None when not recorded)."""

    def __reduce__(self):
        # A plain tuple: the default reduction of a slots dataclass costs several times more.
        return (AgentRun, self.fields())

    def fields(self) -> tuple:
        """The fields in order, as a plain tuple (`AgentRun(*fields)` rebuilds it)."""
        return (self.agent, self.status, self.duration, self.error, self.attempt, self.iteration, self.phase,
                self.usage, self.started_at)

    def to_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "status": self.status,
            "duration": self.duration,
            "error": self.error,
            "attempt": self.attempt,
            "iteration": self.iteration,
            "phase": self.phase,
            "usage": dict(self.usage) if self.usage is not None else None,
            "started_at": self.started_at,
        }


@dataclass(slots=True)
class DispatchResult:
    """The outcome of one dispatch: the final state and every agent run, in execution order."""

    state: State
    """The final state (the partial state when the dispatch failed)."""
    mode: str
    """The orchestration mode that ran."""
    event_id: str
    """The dispatched event's id."""
    session_id: str
    """The dispatched event's session id."""
    duration: float = 0.0
    """Whole-dispatch wall time in seconds."""
    runs: list[AgentRun] = field(default_factory=list)
    """Every agent attempt, in the order they finished."""
    failed_agents: list[str] = field(default_factory=list)
    """Agents whose failure stood (not recovered by an AGENT_ERROR callback)."""
    iterations: int | None = None
    """Loop mode: how many times the loop agent ran."""
    completion_reason: str | None = None
    """Loop mode: "loop_complete" or "max_iterations"."""
    ok: bool = True
    """True when the dispatch succeeded."""
    error: str | None = None
    """Why the dispatch failed (`ExceptionType: message`), or None."""
    trace_id: str | None = None
    """The OpenTelemetry trace of the dispatch (32 lowercase hex digits) when tracing is on, else None."""
    interrupted: bool = False
    """True when a handler raised `Interrupt`: the dispatch waits for `runner.resume(event_id,
    data)` (`ok` is False: it has not succeeded yet, and `error` is None)."""
    interrupt: dict[str, Any] | None = None
    """The interrupt, `{"agent", "reason", "payload"}`, when `interrupted`."""

    def __reduce__(self):
        return (rebuild_dispatch_result, self.flat())

    def flat(self) -> tuple:
        """Plain values only (dicts, lists, tuples, strings, numbers): one global reference when
        pickled instead of one per State and AgentRun. `rebuild_dispatch_result(*flat)` inverts it."""
        state = self.state
        if type(state) is not State:
            state = State._of(dict(state.data), dict(state.meta))
        return (state._data, state._meta, self.mode, self.event_id, self.session_id, self.duration,
                [run.fields() if type(run) is AgentRun else run for run in self.runs], self.failed_agents,
                self.iterations, self.completion_reason, self.ok, self.error, self.trace_id, self.interrupted,
                self.interrupt)

    def to_mermaid(self, kind: Literal["flowchart", "gantt"] = "flowchart") -> str:
        """A Mermaid diagram of what actually ran: each attempt's status, duration and attempt
        number (`flowchart`), or the attempts on a timeline (`gantt`). See actorflow/run_diagram.py."""
        from actorflow.run_diagram import render_run

        return render_run(self, kind)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "mode": self.mode,
            "event_id": self.event_id,
            "session_id": self.session_id,
            "duration": self.duration,
            "state": self.state.to_dict(),
            "runs": [run.to_dict() for run in self.runs],
            "failed_agents": list(self.failed_agents),
            "iterations": self.iterations,
            "completion_reason": self.completion_reason,
            "error": self.error,
            "trace_id": self.trace_id,
            "interrupted": self.interrupted,
            "interrupt": copy.deepcopy(self.interrupt),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DispatchResult:
        return cls(
            state=State.from_dict(d["state"]),
            mode=d["mode"],
            event_id=d["event_id"],
            session_id=d["session_id"],
            duration=d.get("duration", 0.0),
            runs=[AgentRun(**run) for run in d.get("runs", [])],
            failed_agents=list(d.get("failed_agents", [])),
            iterations=d.get("iterations"),
            completion_reason=d.get("completion_reason"),
            ok=d.get("ok", True),
            error=d.get("error"),
            trace_id=d.get("trace_id"),
            interrupted=d.get("interrupted", False),
            interrupt=d.get("interrupt"),
        )


def rebuild_dispatch_result(data, meta, mode, event_id, session_id, duration, runs, failed_agents, iterations,
                            completion_reason, ok, error, trace_id=None, interrupted=False,
                            interrupt=None) -> DispatchResult:
    return DispatchResult(State._of(data, meta), mode, event_id, session_id, duration,
                          [AgentRun(*run) if type(run) is tuple else run for run in runs], failed_agents, iterations,
                          completion_reason, ok, error, trace_id, interrupted, interrupt)


def describe_error(err: BaseException) -> str:
    """`ExceptionType: message`, the form errors take in AgentRun and DispatchResult."""
    text = str(err)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def names(items: Iterable[str]) -> str:
    """`'a', 'b', 'c'` for error messages; `(none)` when empty."""
    listed = ", ".join(repr(i) for i in items)
    return listed or "(none)"
