"""A real OTLP/HTTP trace receiver on 127.0.0.1, for the tracing tests and benchmark.

`POST /v1/traces` with a protobuf `ExportTraceServiceRequest` body (what
`opentelemetry-exporter-otlp-proto-http` sends; gzip accepted), decoded with
`opentelemetry-proto`. Every span is kept as a `ReceivedSpan`; `wait_for(predicate, timeout)`
waits on a condition (no polling) until the spans received so far satisfy the predicate.
Runs in a thread of the caller's process: point `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` at
`receiver.endpoint`.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

__all__ = ["OTLPReceiver", "ReceivedSpan"]

STATUS_ERROR = 2
"""`Status.StatusCode.STATUS_CODE_ERROR` in the OTLP protobuf."""


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as the receiver got it (ids as lowercase hex, "" for no parent)."""

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    status_code: int
    status_message: str

    @property
    def failed(self) -> bool:
        return self.status_code == STATUS_ERROR


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


class OTLPReceiver:
    """Start with `start()` (or as a context manager); spans land in `spans`."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.requests = 0
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces":
                    self.send_error(404)
                    return
                receiver._take(ExportTraceServiceRequest.FromString(body))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="otlp-receiver", daemon=True)

    @property
    def endpoint(self) -> str:
        """The traces URL (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`)."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1/traces"

    def start(self) -> OTLPReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> OTLPReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _take(self, request: ExportTraceServiceRequest) -> None:
        spans = []
        for resource_spans in request.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans.append(ReceivedSpan(
                        span.name, span.trace_id.hex(), span.span_id.hex(), span.parent_span_id.hex(),
                        _attributes(span.attributes), resource, span.status.code, span.status.message,
                    ))
        with self._changed:
            self.spans.extend(spans)
            self.requests += 1
            self._changed.notify_all()

    def wait_for(self, predicate: Callable[[list[ReceivedSpan]], Any], timeout: float = 30.0) -> Any:
        """The predicate's first truthy value over the spans received so far; waits for more
        spans until then. Raises TimeoutError after `timeout` seconds."""
        with self._changed:
            value = self._changed.wait_for(lambda: predicate(list(self.spans)), timeout)
        if not value:
            raise TimeoutError(f"the spans wanted did not arrive within {timeout}s; received: "
                               f"{[(s.name, s.attributes) for s in self.spans][-20:]}")
        return value

    def of_trace(self, trace_id: str) -> list[ReceivedSpan]:
        with self._changed:
            return [span for span in self.spans if span.trace_id == trace_id]

    def clear(self) -> None:
        with self._changed:
            self.spans.clear()
