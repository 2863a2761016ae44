"""HTTP request counters kept by each replica, served on `/metrics` after the runner's."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from actorflow.runtime.metrics import DURATION_BUCKETS

__all__ = ["HTTPMetrics", "CountRequests", "CONTENT_TYPE"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The Prometheus text exposition format."""


class HTTPMetrics:
    """Responses by method, route template and status, and their durations by route.

    Labels use the matched route (`/v1/dispatch`), never the raw path, so unknown URLs
    cannot grow the label set: they count under `path="unmatched"`.
    """

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str, int]] = Counter()
        self.buckets: Counter[tuple[str, float]] = Counter()
        self.seconds: Counter[str] = Counter()
        self.in_flight = 0

    def observe(self, method: str, path: str, status: int, elapsed: float) -> None:
        self.requests[(method, path, status)] += 1
        self.seconds[path] += elapsed
        for bound in DURATION_BUCKETS:
            if elapsed <= bound:
                self.buckets[(path, bound)] += 1

    def render(self) -> str:
        """Prometheus text for the HTTP counters (the request being served is in flight)."""
        out = [
            "# HELP actorflow_http_requests_total HTTP responses, by method, route and status.",
            "# TYPE actorflow_http_requests_total counter",
        ]
        for (method, path, status), n in sorted(self.requests.items()):
            out.append(f'actorflow_http_requests_total{{method="{method}",path="{path}",status="{status}"}} {n}')
        out += [
            "# HELP actorflow_http_request_duration_seconds HTTP request durations, by route.",
            "# TYPE actorflow_http_request_duration_seconds histogram",
        ]
        counts: Counter[str] = Counter()
        for (_, path, _), n in self.requests.items():
            counts[path] += n
        for path in sorted(counts):
            for bound in DURATION_BUCKETS:
                out.append(
                    f'actorflow_http_request_duration_seconds_bucket{{path="{path}",le="{bound}"}} {self.buckets[(path, bound)]}'
                )
            out.append(f'actorflow_http_request_duration_seconds_bucket{{path="{path}",le="+Inf"}} {counts[path]}')
            out.append(f'actorflow_http_request_duration_seconds_sum{{path="{path}"}} {self.seconds[path]:.6f}')
            out.append(f'actorflow_http_request_duration_seconds_count{{path="{path}"}} {counts[path]}')
        out += [
            "# HELP actorflow_http_requests_in_flight HTTP requests being served by this replica.",
            "# TYPE actorflow_http_requests_in_flight gauge",
            f"actorflow_http_requests_in_flight {self.in_flight}",
        ]
        return "\n".join(out) + "\n"


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

        metrics.in_flight += 1
        try:
            await self.app(scope, receive, send_status)
        finally:
            metrics.in_flight -= 1
            path = getattr(scope.get("route"), "path", None) or "unmatched"
            metrics.observe(scope["method"], path, status, time.perf_counter() - started)
