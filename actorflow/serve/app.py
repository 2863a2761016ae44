"""The Ray Serve application: a FastAPI ingress whose replica holds the Runner.

Each replica starts its own `Runner` (Ray is already initialized there, so the runner joins
it) and keeps it for its life: the supervisor and the agent actors belong to the replica, and
Serve's graceful shutdown drains the HTTP requests in flight before `__del__` stops the runner.
README "Serving over HTTP" says why the runner is not shared across replicas.

    serve run deployments/serve.yaml              # import_path: actorflow.serve.app:build_app
    actorflow serve configs/sequential.toml       # the same application, from the CLI
"""

# No `from __future__ import annotations`: FastAPI reads the route signatures' annotations.
import json
from typing import Any

from fastapi import FastAPI, Request, Response
from pydantic import ValidationError
from ray import serve
from ray.serve import Application
from starlette.exceptions import HTTPException

from actorflow import __version__
from actorflow.config import AgentFlowConfig, load_config
from actorflow.events import Event
from actorflow.exceptions import ActorflowError
from actorflow.runtime.runner import Runner
from actorflow.serve.errors import RequestError, error_body, status_of
from actorflow.serve.metrics import CONTENT_TYPE, CountRequests, HTTPMetrics
from actorflow.serve.schema import (
    AgentsResponse,
    DispatchRequest,
    DispatchResponse,
    ErrorResponse,
    HealthResponse,
    ServeArgs,
)

__all__ = ["ActorflowIngress", "api", "build_app", "application"]

# Time Serve allows a stopping replica beyond the orchestration deadline to finish its requests.
_SHUTDOWN_GRACE_SECONDS = 10.0

api = FastAPI(
    title="actorflow",
    version=__version__,
    description="Dispatch events to an actorflow orchestration (route, collaborative, sequential, loop, mixed).",
)
api.state.http_metrics = HTTPMetrics()
api.add_middleware(CountRequests)

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in {
        400: "Malformed body: empty or not JSON.",
        404: "Unknown agent, or an agent with no handler.",
        413: "Body larger than [serve] max_body_bytes.",
        422: "Invalid fields, or the agents failed on this event (error.type says which; result holds the partial result).",
        429: "The agent's mailbox is full: back off and retry.",
        503: "The agent's circuit breaker is open, or the runner is not accepting dispatches.",
        504: "The orchestration deadline (timeout_seconds) expired.",
    }.items()
}
_DISPATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": DispatchRequest.model_json_schema()}},
    }
}


def _json(status: int, body: Any) -> Response:
    # default=str: agents may put values JSON cannot encode (dates, sets) in their state.
    return Response(json.dumps(body, default=str), status_code=status, media_type="application/json")


@api.exception_handler(RequestError)
async def _refused(request: Request, err: RequestError) -> Response:
    return _json(err.status, error_body(err.type, str(err)))


@api.exception_handler(ValidationError)
async def _invalid(request: Request, err: ValidationError) -> Response:
    errors = err.errors(include_url=False, include_context=False, include_input=False)
    if any(e["type"] == "json_invalid" for e in errors):
        return _json(400, error_body("MalformedBody", f"the request body is not valid JSON: {errors[0]['msg']}"))
    details = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in errors]
    message = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in errors)
    return _json(422, error_body("ValidationError", f"invalid dispatch request: {message}", details=details))


@api.exception_handler(ActorflowError)
async def _failed(request: Request, err: ActorflowError) -> Response:
    return _json(
        status_of(err),
        error_body(type(err).__name__, err.message, agent=getattr(err, "agent", None), result=err.result),
    )


@api.exception_handler(HTTPException)
async def _http_error(request: Request, err: HTTPException) -> Response:
    response = _json(err.status_code, error_body("HTTPError", str(err.detail)))
    response.headers.update(err.headers or {})
    return response


@api.exception_handler(Exception)
async def _bug(request: Request, err: Exception) -> Response:
    # Starlette re-raises the error after this answer, and Serve logs it with its traceback.
    return _json(500, error_body("InternalServerError", f"{type(err).__name__}: {err}"))


async def _read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length", "")
    too_large = f"the request body is larger than {limit} bytes ([serve] max_body_bytes)"
    if declared.isdigit() and int(declared) > limit:
        raise RequestError(413, "BodyTooLarge", too_large)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, "BodyTooLarge", too_large)
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body.strip():
        raise RequestError(400, "MalformedBody", 'the request body is empty: send {"target": AGENT, "data": {...}}')
    return body


@serve.deployment(ray_actor_options={"num_cpus": 0})
@serve.ingress(api)
class ActorflowIngress:
    """One replica: a Runner for `config`, and the HTTP routes in front of it."""

    def __init__(self, config: AgentFlowConfig) -> None:
        self._max_body = config.serve.max_body_bytes
        self._runner = Runner(config).start()

    @api.post(
        "/v1/dispatch",
        response_model=DispatchResponse,
        responses=_ERRORS,
        openapi_extra=_DISPATCH_BODY,
        summary="Dispatch an event through the orchestration",
    )
    async def dispatch(self, request: Request) -> Response:
        """Runs the configured pattern for `{target, data, metadata}`; answers the DispatchResult.

        The body is read as JSON whatever its Content-Type (so `curl -d` works).
        """
        body = DispatchRequest.model_validate_json(await _read_body(request, self._max_body))
        result = await self._runner.dispatch_async(Event(body.target, body.data, body.metadata, source="http"))
        return _json(200, result.to_dict())

    @api.get("/v1/agents", response_model=AgentsResponse, summary="List the agents and their circuit state")
    def agents(self) -> Response:
        return _json(200, {"agents": self._runner.agents()})

    @api.get("/v1/health", response_model=HealthResponse, responses={503: _ERRORS[503]}, summary="Liveness")
    def health(self) -> Response:
        running = sum(1 for agent in self._runner.agents() if agent["registered"])
        return _json(200, {"status": "ok", "mode": self._runner.mode, "agents": running})

    @api.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format 0.0.4"}},
        summary="Prometheus metrics",
    )
    def metrics(self, request: Request) -> Response:
        text = self._runner.metrics_text() + request.app.state.http_metrics.render()
        return Response(text, media_type=CONTENT_TYPE)

    def check_health(self) -> None:
        """Serve's replica health check: a stopped runner makes Serve replace the replica."""
        if not self._runner.started:
            raise RuntimeError("the actorflow runner of this replica is not running")

    def __del__(self) -> None:
        """Serve calls this after draining the replica's requests: drain dispatches, stop actors."""
        runner = getattr(self, "_runner", None)
        if runner is not None:
            runner.stop()


def application(config: AgentFlowConfig) -> Application:
    """The Serve application for a loaded config, with its `[serve]` settings applied."""
    settings = config.serve
    return ActorflowIngress.options(
        num_replicas=settings.num_replicas,
        max_ongoing_requests=settings.max_ongoing_requests,
        graceful_shutdown_timeout_s=config.orchestration.timeout_seconds + _SHUTDOWN_GRACE_SECONDS,
    ).bind(config)


def build_app(args: dict[str, Any]) -> Application:
    """Serve application builder: `args` is `{"config": PATH, "env": NAME}` (see ServeArgs)."""
    options = ServeArgs.model_validate(args)
    return application(load_config(options.config, env=options.env))
