"""The Ray Serve HTTP application: `POST /v1/dispatch`, `GET /v1/agents`, `/v1/health`, `/metrics`.

Importing this package imports Ray Serve; `import actorflow` does not.
"""

from actorflow.serve.app import ActorflowIngress, application, build_app
from actorflow.serve.schema import DispatchRequest, DispatchResponse, ErrorResponse, ServeArgs
from actorflow.serve.server import serving, wait_for_shutdown_signal

__all__ = [
    "ActorflowIngress",
    "application",
    "build_app",
    "serving",
    "wait_for_shutdown_signal",
    "DispatchRequest",
    "DispatchResponse",
    "ErrorResponse",
    "ServeArgs",
]
