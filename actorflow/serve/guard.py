"""The HTTP API's gate: CORS and the API key, in front of every route.

    OPTIONS preflight from an allowed origin   answered by CORS, no key needed
    /v1/health                                  always open (load balancers probe it)
    /metrics                                    open with `[serve] public_metrics = true`
    anything else                               `Authorization: Bearer <key>` or 401 JSON

The key is read from the environment variable `[serve] api_key_env` names, in the replica's
process, and compared in constant time. It is never logged, and never put in a response.
"""

from __future__ import annotations

import hmac
import json
import os
from dataclasses import dataclass, field
from typing import Any

from starlette.middleware.cors import CORSMiddleware

from actorflow.config import ServeConfig
from actorflow.exceptions import ConfigError

__all__ = ["GuardSettings", "Guard"]

_OPEN_PATHS = frozenset({"/v1/health"})


@dataclass(frozen=True, slots=True)
class GuardSettings:
    """What the gate enforces in one replica."""

    api_key: bytes | None = field(default=None, repr=False)
    """The key clients must present; None: no authentication."""
    public_metrics: bool = False
    """`/metrics` open even with a key."""
    cors_origins: tuple[str, ...] = ()
    """Origins allowed cross-origin access; empty: none."""

    @classmethod
    def from_config(cls, settings: ServeConfig) -> GuardSettings:
        key = None
        if settings.api_key_env:
            value = os.environ.get(settings.api_key_env, "")
            if not value:
                # Fail closed: a replica that cannot enforce the key must not serve openly.
                raise ConfigError(
                    f"[serve] api_key_env = {settings.api_key_env!r}, but that environment variable is "
                    "empty or not set in the serving process (on a cluster: on every node that runs "
                    "a replica, e.g. from a Kubernetes Secret)",
                    key="serve.api_key_env",
                )
            key = value.encode()
        return cls(key, settings.public_metrics, tuple(settings.cors_origins))


class Guard:
    """ASGI middleware: CORS, then the API key; reads `scope["app"].state.guard` (GuardSettings)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._cors: dict[tuple[str, ...], Any] = {}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        settings: GuardSettings = getattr(scope["app"].state, "guard", None) or GuardSettings()
        if settings.cors_origins:
            await self._with_cors(settings.cors_origins)(scope, receive, send)
        else:
            await self._authenticated(scope, receive, send)

    def _with_cors(self, origins: tuple[str, ...]) -> Any:
        if origins not in self._cors:
            self._cors[origins] = CORSMiddleware(
                self._authenticated,
                allow_origins=list(origins),
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type", "traceparent"],
                max_age=600,
            )
        return self._cors[origins]

    async def _authenticated(self, scope: dict, receive: Any, send: Any) -> None:
        settings: GuardSettings = getattr(scope["app"].state, "guard", None) or GuardSettings()
        if settings.api_key is None or _is_open(scope, settings) or _presents(scope, settings.api_key):
            await self.app(scope, receive, send)
            return
        body = json.dumps(
            {
                "error": {
                    "type": "Unauthorized",
                    "message": "this API needs an API key: send the header 'Authorization: Bearer <key>'",
                },
                "result": None,
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b'Bearer realm="actorflow"'),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _is_open(scope: dict, settings: GuardSettings) -> bool:
    path = _route_path(scope)
    return path in _OPEN_PATHS or (settings.public_metrics and path == "/metrics")


def _route_path(scope: dict) -> str:
    """The path inside the application (Serve mounts it under its route_prefix)."""
    path, root = scope.get("path", ""), scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):]
    return path.rstrip("/") or "/"


def _presents(scope: dict, key: bytes) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            # compare_digest: the time taken does not depend on how much of the key matched.
            return scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), key)
    return False
