"""HTTP request metrics kept by each replica with `prometheus_client`, served on `/metrics`
after the runner's: `actorflow_http_requests_total{method,path,status}`,
`actorflow_http_request_duration_seconds{path}` (histogram), `actorflow_http_requests_in_flight`."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from actorflow.runtime.metrics import DURATION_BUCKETS

__all__ = ["HTTPMetrics", "CountRequests", "CONTENT_TYPE"]

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
"""The Prometheus text exposition format that `generate_latest` writes."""


class HTTPMetrics:
    """Responses by method, route template and status, and their durations by route.

    Labels use the matched route (`/v1/dispatch`), never the raw path, so unknown URLs
    cannot grow the label set: they count under `path="unmatched"`.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter("actorflow_http_requests", "HTTP responses, by method, route and status.",
                                ["method", "path", "status"], registry=self.registry)
        self.duration = Histogram("actorflow_http_request_duration_seconds", "HTTP request durations, by route.",
                                  ["path"], registry=self.registry, buckets=DURATION_BUCKETS)
        self.in_flight = Gauge("actorflow_http_requests_in_flight", "HTTP requests being served by this replica.",
                               registry=self.registry)

    def observe(self, method: str, path: str, status: int, elapsed: float) -> None:
        self.requests.labels(method, path, str(status)).inc()
        self.duration.labels(path).observe(elapsed)

    def render(self) -> str:
        """Prometheus text for the HTTP metrics (the request being served is in flight)."""
        return generate_latest(self.registry).decode()


class CountRequests:
    """ASGI middleware feeding the app's `state.http_metrics` (an `HTTPMetrics`)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        metrics: HTTPMetrics = scope["app"].state.http_metrics
        status = 500
        started = time.perf_counter()

        async def send_status(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_status)
        finally:
            metrics.in_flight.dec()
            path = getattr(scope.get("route"), "path", None) or "unmatched"
            metrics.observe(scope["method"], path, status, time.perf_counter() - started)
