"""OpenTelemetry tracing (the `otel` extra): the one module of actorflow that talks to OpenTelemetry.

Tracing is on when `[observability] tracing = true` or the standard exporter variables are set
(`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_TRACES_EXPORTER`),
and off when `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`. Off, nothing here imports
OpenTelemetry and the runtime's only cost is an `is None` check where a span would be made.

Who makes which span (see DESIGN "Observability"):
- the supervisor: `actorflow.dispatch`, one per dispatch, a child of the caller's `traceparent`
  when one came with the call (HTTP); and `actorflow.agent` for a nested flow's attempt, which
  runs in the supervisor;
- the agent actor, in its own process: `actorflow.agent`, one per attempt, a child of the
  dispatch span whose `traceparent` travels in the message (`(event, state, (traceparent,
  attempt))` instead of `(event, state)`);
- an LLM agent: `chat {model}` (OpenTelemetry GenAI conventions), a child of its agent span.

Each process sets up its own `TracerProvider` once (`setup`): a `BatchSpanProcessor` over the
OTLP/HTTP exporter (or the console exporter with `OTEL_TRACES_EXPORTER=console`), resource
`service.name = "actorflow"` unless `OTEL_SERVICE_NAME` says otherwise, plus `process.pid`
and, in an agent's process, `actorflow.agent`. The exporter reads the endpoint and headers from
the `OTEL_*` variables the runner hands to every actor it starts (`otel_env`).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from actorflow.exceptions import ConfigError

__all__ = ["Tracing", "requested", "otel_env", "require_extra", "setup", "active", "flush"]

INSTALL_HINT = "pip install 'actorflow[otel]'"

_TRIGGERS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER")

_active: Tracing | None = None
_lock = threading.Lock()


def requested(configured: bool, environ: Mapping[str, str] | None = None) -> bool:
    """Is tracing on: `[observability] tracing` or an OTEL exporter variable, unless the
    environment switches it off (`OTEL_SDK_DISABLED=true`, `OTEL_TRACES_EXPORTER=none`)?"""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return configured or any(env.get(key, "").strip() for key in _TRIGGERS)


def otel_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's `OTEL_*` variables: what the runner hands to the actors it starts."""
    env = os.environ if environ is None else environ
    return {key: value for key, value in env.items() if key.startswith("OTEL_")}


def require_extra() -> None:
    """Raise ConfigError naming the extra to install when the OpenTelemetry SDK or its OTLP/HTTP
    exporter cannot be imported (tracing was asked for)."""
    try:
        import opentelemetry.exporter.otlp.proto.http.trace_exporter  # noqa: F401
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError as err:
        raise ConfigError(
            f"tracing is on ([observability] tracing = true or an OTEL_EXPORTER_OTLP_* / OTEL_TRACES_EXPORTER "
            f"variable is set) but OpenTelemetry is not installed ({err}); run: {INSTALL_HINT} "
            "(or set tracing = false and unset the OTEL_* variables)",
            key="observability.tracing",
        ) from None


def setup(agent: str | None = None) -> Tracing:
    """This process's `Tracing`, set up on the first call (`agent`: the agent this process hosts)."""
    global _active
    with _lock:
        if _active is None:
            require_extra()
            _active = Tracing(_provider(agent))
        return _active


def active() -> Tracing | None:
    """This process's `Tracing` when it was set up, else None (tracing off here)."""
    return _active


def flush(timeout_seconds: float = 5.0) -> None:
    """Export the spans still buffered in this process (before it is stopped or killed)."""
    if _active is not None:
        _active.flush(timeout_seconds)


def _provider(agent: str | None) -> Any:
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    attributes: dict[str, Any] = {"process.pid": os.getpid()}
    if not os.environ.get("OTEL_SERVICE_NAME", "").strip():
        attributes["service.name"] = "actorflow"
    if agent is not None:
        attributes["actorflow.agent"] = agent
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(_exporter()))
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(provider)  # a handler's own spans then nest under the agent span
    return provider


def _exporter() -> Any:
    if os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()  # endpoint, headers, timeout: from the OTEL_EXPORTER_OTLP_* variables


class Tracing:
    """The spans actorflow makes, over one process's TracerProvider."""

    def __init__(self, provider: Any) -> None:
        from opentelemetry import trace
        from opentelemetry.trace import SpanKind, Status, StatusCode
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self._provider = provider
        self._tracer = provider.get_tracer("actorflow")
        self._propagator = TraceContextTextMapPropagator()
        self._trace, self._kind, self._status, self._code = trace, SpanKind, Status, StatusCode

    # -- trace context in messages ----------------------------------------------------------

    def _parent(self, traceparent: str | None) -> Any:
        """The context whose span is `traceparent`'s (None: a new trace)."""
        return self._propagator.extract({"traceparent": traceparent}) if traceparent else None

    def traceparent(self, span: Any) -> str:
        """`span` as a W3C `traceparent` string, for a message."""
        carrier: dict[str, str] = {}
        self._propagator.inject(carrier, context=self._trace.set_span_in_context(span))
        return carrier["traceparent"]

    @staticmethod
    def trace_id(span: Any) -> str:
        """The span's trace id: 32 lowercase hex digits."""
        return format(span.get_span_context().trace_id, "032x")

    # -- spans -------------------------------------------------------------------------------

    def start_dispatch(self, event: Any, mode: str, traceparent: str | None = None) -> Any:
        """The `actorflow.dispatch` span (not made current: the supervisor runs many dispatches
        on one event loop and passes `traceparent(span)` explicitly)."""
        return self._tracer.start_span(
            "actorflow.dispatch", context=self._parent(traceparent), kind=self._kind.SERVER,
            attributes={"actorflow.mode": mode, "actorflow.event_id": event.id,
                        "actorflow.session_id": event.session_id},
        )

    def start_agent(self, agent: str, carrier: tuple[str, int]) -> Any:
        """An `actorflow.agent` span for attempt `carrier[1]`, a child of `carrier[0]`."""
        traceparent, attempt = carrier
        return self._tracer.start_span(
            "actorflow.agent", context=self._parent(traceparent),
            attributes={"actorflow.agent": agent, "actorflow.attempt": attempt},
        )

    def end(self, span: Any, error: str | None = None, status: str | None = None) -> None:
        """End `span`; `status` becomes `actorflow.status`; `error` marks it failed."""
        if status is not None:
            span.set_attribute("actorflow.status", status)
        if error is not None:
            span.set_status(self._status(self._code.ERROR, error))
        span.end()

    @contextmanager
    def agent_span(self, agent: str, carrier: tuple[str, int]) -> Iterator[Any]:
        """`start_agent` as this task's current span (an LLM call inside nests under it);
        ended `cancelled` if the call is cancelled; the caller ends it otherwise."""
        span = self.start_agent(agent, carrier)
        with self._trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
            try:
                yield span
            except BaseException as err:
                self.end(span, f"{type(err).__name__}: {err}", "cancelled" if isinstance(err, asyncio.CancelledError) else "error")
                raise

    @contextmanager
    def chat_span(self, provider: str, model: str, server: str | None = None) -> Iterator[Any]:
        """A GenAI client span `chat {model}` around one chat call (a child of the current span);
        `record_chat` adds the usage. A raised error marks it failed (`error.type`)."""
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat", "gen_ai.system": provider, "gen_ai.provider.name": provider,
            "gen_ai.request.model": model,
        }
        if server:
            attributes["server.address"] = server
        with self._tracer.start_as_current_span(
            f"chat {model}", kind=self._kind.CLIENT, attributes=attributes,
            record_exception=False, set_status_on_exception=False,
        ) as span:
            try:
                yield span
            except BaseException as err:
                span.set_attribute("error.type", type(err).__name__)
                span.set_status(self._status(self._code.ERROR, f"{type(err).__name__}: {err}"))
                raise

    @staticmethod
    def record_chat(span: Any, model: str, usage: Mapping[str, int] | None) -> None:
        span.set_attribute("gen_ai.response.model", model)
        if usage:
            span.set_attribute("gen_ai.usage.input_tokens", usage.get("input_tokens", 0))
            span.set_attribute("gen_ai.usage.output_tokens", usage.get("output_tokens", 0))

    def flush(self, timeout_seconds: float = 5.0) -> None:
        self._provider.force_flush(int(timeout_seconds * 1000))

