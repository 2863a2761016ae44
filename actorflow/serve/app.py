"""The Ray Serve application: a FastAPI ingress whose replica holds the Runner.

Each replica starts its own `Runner` (Ray is already initialized there, so the runner joins
it) and keeps it for its life: the supervisor and the agent actors belong to the replica, and
Serve's graceful shutdown drains the HTTP requests in flight before `__del__` stops the runner.
README "Serving over HTTP" says why the runner is not shared across replicas.

Around the routes: the gate (`guard.py`: API key, CORS), strict JSON both ways (`jsonio.py`),
the replica's own limit on dispatches at once (503 Overloaded), and draining on the signal of
`actorflow serve` (`drain.py`: 503 Draining, `/v1/health` 503). Every 429 and 503 carries
`Retry-After`.

    serve run deployments/serve.yaml              # import_path: actorflow.serve.app:build_app
    actorflow serve configs/sequential.toml       # the same application, from the CLI
"""

# No `from __future__ import annotations`: FastAPI reads the route signatures' annotations.
import asyncio
import concurrent.futures
import math
import uuid
from typing import Any

from fastapi import FastAPI, Request, Response
from pydantic import ValidationError
from ray import serve
from ray.exceptions import RayActorError
from ray.serve import Application
from starlette.exceptions import HTTPException

from actorflow import __version__, tracing
from actorflow.config import AgentFlowConfig, load_config
from actorflow.events import Event
from actorflow.exceptions import ActorflowError, CircuitOpenError, MailboxFullError
from actorflow.runtime.runner import Runner
from actorflow.serve.dispatches import dispatch_status, resume_data
from actorflow.serve.errors import RequestError, error_body, status_of
from actorflow.serve.flows import describe_flows, flow_runner, load_flows, start_flows
from actorflow.serve.guard import Guard, GuardSettings
from actorflow.serve.jsonio import check_strict, dumps
from actorflow.serve.metrics import CONTENT_TYPE, CountRequests, HTTPMetrics
from actorflow.serve.streaming import open_stream, sse_response
from actorflow.serve.schema import (
    AgentsResponse,
    DispatchRequest,
    DispatchResponse,
    DispatchStatusResponse,
    ErrorResponse,
    HealthResponse,
    ResumeRequest,
    ServeArgs,
)

__all__ = ["ActorflowIngress", "api", "build_app", "application"]

# Time Serve allows a stopping replica beyond the orchestration deadline to finish its requests.
_SHUTDOWN_GRACE_SECONDS = 10.0
# Retry-After (seconds) on a 503 for a replica that is draining or stopped: time for a load
# balancer to move the client to another replica, or for a restarted server to come up.
_RETRY_AFTER_UNAVAILABLE = 5
# Retry-After on 429 (mailbox full) and on 503 Overloaded: the backlog is seconds, not minutes.
_RETRY_AFTER_BUSY = 1
# Serve's own per-replica limit is above [serve] max_ongoing_requests by this much, so requests
# past the app's limit still reach the app and get its JSON answer instead of waiting in
# Serve's queue; past that too, Serve queues at most this many more (then 503, plain text).
_SERVE_HEADROOM = 64
_DRAINING = "this server is stopping and takes no new dispatches; retry shortly"

api = FastAPI(
    title="actorflow",
    version=__version__,
    description="Dispatch events to an actorflow orchestration (route, collaborative, sequential, loop, mixed).",
)
api.state.http_metrics = HTTPMetrics()
api.state.guard = GuardSettings()
api.state.circuit_retry_after = _RETRY_AFTER_UNAVAILABLE
api.add_middleware(Guard)
api.add_middleware(CountRequests)  # outermost: also counts the 401s

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in {
        400: "Malformed body: empty, not JSON, or not strict JSON (NaN, Infinity, numbers too large).",
        401: "[serve] api_key_env is set and the request has no valid `Authorization: Bearer <key>`.",
        404: "Unknown agent, or an agent with no handler.",
        413: "Body larger than [serve] max_body_bytes.",
        422: "Invalid fields, or the agents failed on this event (error.type says which; result holds the partial result).",
        429: "The agent's mailbox is full: back off and retry after `Retry-After` seconds.",
        503: "The agent's circuit breaker is open, the replica is at [serve] max_ongoing_requests, or it is "
        "draining (stopping): retry after `Retry-After` seconds.",
        504: "The orchestration deadline (timeout_seconds) expired.",
    }.items()
}
_RESUME_ERRORS = {
    **{code: _ERRORS[code] for code in (400, 401, 413, 422, 429, 503, 504)},
    404: {"model": ErrorResponse, "description": "No dispatch with this event id (DispatchNotFoundError)."},
    409: {"model": ErrorResponse, "description": "The dispatch finished or is still running (DispatchNotResumableError)."},
}
_RESUME_BODY = {
    "requestBody": {
        "required": False,
        "content": {"application/json": {"schema": ResumeRequest.model_json_schema()}},
    }
}
_DISPATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": DispatchRequest.model_json_schema()}},
    }
}


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(body), status_code=status, media_type="application/json", headers=headers)


def _retry_after(status: int, err: BaseException | None = None) -> dict[str, str] | None:
    if isinstance(err, MailboxFullError) or status == 429:
        return {"Retry-After": str(_RETRY_AFTER_BUSY)}
    if isinstance(err, CircuitOpenError):
        return {"Retry-After": str(api.state.circuit_retry_after)}
    if status == 503:
        return {"Retry-After": str(_RETRY_AFTER_UNAVAILABLE)}
    return None


@api.exception_handler(RequestError)
async def _refused(request: Request, err: RequestError) -> Response:
    headers = err.headers if err.headers is not None else _retry_after(err.status)
    return _json(err.status, error_body(err.type, str(err)), headers)


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
    status = status_of(err)
    return _json(
        status,
        error_body(type(err).__name__, err.message, agent=getattr(err, "agent", None), result=err.result),
        _retry_after(status, err),
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


async def _read_body(request: Request, limit: int, *, empty_ok: bool = False) -> bytes:
    """The whole body, refused with 413 as soon as it passes `limit` bytes (and 400 when empty,
    unless `empty_ok`)."""
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
    if not body.strip() and not empty_ok:
        raise RequestError(400, "MalformedBody", 'the request body is empty: send {"target": AGENT, "data": {...}}')
    return body


@serve.deployment(ray_actor_options={"num_cpus": 0})
@serve.ingress(api)
class ActorflowIngress:
    """One replica: a Runner for `config`, and the HTTP routes in front of it.

    `drain` is the `DrainSwitch` of `actorflow serve` (None under `serve run`/`serve deploy`,
    where Serve's own graceful shutdown applies).
    """

    async def __init__(self, config: AgentFlowConfig, drain: Any = None, flows: Any = None) -> None:
        settings = config.serve
        self._max_body = settings.max_body_bytes
        self._limit = settings.max_ongoing_requests
        # A resume waits for its whole dispatch in a thread: its own pool, one thread per admitted
        # request, so resumes never starve the default executor the other routes use.
        self._resumes = concurrent.futures.ThreadPoolExecutor(self._limit, thread_name_prefix="actorflow-resume")
        api.state.guard = GuardSettings.from_config(settings)
        api.state.circuit_retry_after = max(1, math.ceil(config.orchestration.circuit_breaker.reset_timeout_seconds))
        self._draining = False
        self._dispatching = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._runner = Runner(config).start()
        # Several flows behind one server (serve/flows.py): name → runner; the first is `config`'s.
        self._flows = start_flows(config, self._runner, flows)
        self._drain_task = None
        if drain is not None:
            replica = uuid.uuid4().hex
            await drain.join.remote(replica)
            self._drain_task = asyncio.ensure_future(self._drain_when_told(drain, replica))

    async def _drain_when_told(self, switch: Any, replica: str) -> None:
        try:
            await switch.wait.remote()
        except RayActorError:  # `actorflow serve` went away without draining: Serve's shutdown applies
            return
        self._draining = True
        for runner in self._flows.values():
            await asyncio.to_thread(runner.stop)  # the dispatches in flight finish first
        await self._idle.wait()  # and their answers have been sent
        await switch.done.remote(replica)

    def _refuse_if_busy(self) -> None:
        if self._draining:
            raise RequestError(503, "Draining", _DRAINING)
        if self._dispatching >= self._limit:
            raise RequestError(
                503,
                "Overloaded",
                f"this replica is already running {self._limit} dispatches ([serve] max_ongoing_requests); "
                "retry shortly",
                {"Retry-After": str(_RETRY_AFTER_BUSY)},
            )

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
        return await self._dispatch(request, self._runner)

    @api.get(
        "/v1/flows",
        responses={401: _ERRORS[401]},
        summary="The flows this server serves (several with `actorflow serve A.toml B.toml`)",
    )
    def flows(self) -> Response:
        return _json(200, {"flows": describe_flows(self._flows)})

    @api.post(
        "/v1/flows/{name}/dispatch",
        response_model=DispatchResponse,
        responses=_ERRORS,
        openapi_extra=_DISPATCH_BODY,
        summary="Dispatch an event through the named flow",
    )
    async def flow_dispatch(self, name: str, request: Request) -> Response:
        return await self._dispatch(request, flow_runner(self._flows, name))

    @api.get(
        "/v1/flows/{name}/agents",
        response_model=AgentsResponse,
        responses={401: _ERRORS[401], 404: {"model": ErrorResponse, "description": "No flow of that name."}},
        summary="The named flow's agents",
    )
    def flow_agents(self, name: str) -> Response:
        return _json(200, {"agents": flow_runner(self._flows, name).agents()})

    async def _admit(self, request: Request) -> tuple[Event, dict[str, Any]]:
        """Count a dispatch in (refused while busy or draining) and read its event and
        orchestration overrides; the caller calls `_dispatch_ended` once it is over."""
        self._enter()
        try:
            raw = await _read_body(request, self._max_body)
            check_strict(raw)
            body = DispatchRequest.model_validate_json(raw)
            return Event(body.target, body.data, body.metadata, id=body.event_id, source="http"), body.orchestration
        except BaseException:
            self._dispatch_ended()
            raise

    async def _dispatch(self, request: Request, runner: Runner) -> Response:
        event, overrides = await self._admit(request)
        try:
            result = await runner.dispatch_async(event, traceparent=request.headers.get("traceparent"), **overrides)
        except ActorflowError as err:
            if self._draining and err.result is None:  # raced the drain to a stopping runner
                raise RequestError(503, "Draining", _DRAINING) from err
            raise
        finally:
            self._dispatch_ended()
        return _json(200, result.to_dict())

    @api.post(
        "/v1/dispatch/stream",
        responses={200: {"content": {"text/event-stream": {}}, "description": "One SSE message per DispatchUpdate"},
                   **_ERRORS},
        openapi_extra=_DISPATCH_BODY,
        summary="Dispatch an event and stream its updates as Server-Sent Events",
    )
    async def dispatch_stream(self, request: Request) -> Response:
        """Same body as /v1/dispatch; `event: <kind>`, `data: <DispatchUpdate JSON>` per update.
        A client that disconnects cancels the dispatch (actorflow/serve/streaming.py)."""
        return await self._stream(request, self._runner)

    @api.post(
        "/v1/flows/{name}/dispatch/stream",
        responses={200: {"content": {"text/event-stream": {}}, "description": "One SSE message per DispatchUpdate"},
                   **_ERRORS},
        openapi_extra=_DISPATCH_BODY,
        summary="Dispatch an event through the named flow and stream its updates as Server-Sent Events",
    )
    async def flow_dispatch_stream(self, name: str, request: Request) -> Response:
        return await self._stream(request, flow_runner(self._flows, name))

    async def _stream(self, request: Request, runner: Runner) -> Response:
        event, overrides = await self._admit(request)
        try:
            updates = await open_stream(runner, event, overrides, request.headers.get("traceparent"))
        except BaseException:
            self._dispatch_ended()
            raise
        return sse_response(updates, self._dispatch_ended)

    def _enter(self) -> None:
        """Count a dispatch in (refused while busy or draining); `_dispatch_ended` counts it out."""
        self._refuse_if_busy()
        self._dispatching += 1
        self._idle.clear()

    def _dispatch_ended(self) -> None:
        self._dispatching -= 1
        if not self._dispatching:
            self._idle.set()

    @api.get(
        "/v1/dispatches/{event_id}",
        response_model=DispatchStatusResponse,
        responses={401: _ERRORS[401], 404: _RESUME_ERRORS[404], 503: _ERRORS[503]},
        summary="Where a dispatch stands: running, interrupted (waiting for resume) or finished",
    )
    async def dispatch_status(self, event_id: str) -> Response:
        return _json(200, await asyncio.to_thread(dispatch_status, self._runner, event_id))

    @api.post(
        "/v1/dispatches/{event_id}/resume",
        response_model=DispatchResponse,
        responses=_RESUME_ERRORS,
        openapi_extra=_RESUME_BODY,
        summary="Resume an interrupted dispatch with the person's answer; answers its final result",
    )
    async def resume(self, event_id: str, request: Request) -> Response:
        """Runs the interrupted agent again with `data` merged into its input and continues the
        pattern; answers like /v1/dispatch (an interrupt again is a 200 with `interrupted`)."""
        self._enter()
        try:
            data = resume_data(await _read_body(request, self._max_body, empty_ok=True))
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(self._resumes, self._runner.resume, event_id, data)
        finally:
            self._dispatch_ended()
        return _json(200, result.to_dict())

    @api.get(
        "/v1/agents",
        response_model=AgentsResponse,
        responses={401: _ERRORS[401], 503: _ERRORS[503]},
        summary="List the agents: circuit state, current process ids, restarts",
    )
    def agents(self) -> Response:
        return _json(200, {"agents": self._runner.agents()})

    @api.get(
        "/v1/health",
        response_model=HealthResponse,
        responses={503: {"model": ErrorResponse, "description": "Draining or stopped: take this replica out of rotation."}},
        summary="Readiness: 200 while this replica takes dispatches, 503 while it drains",
    )
    def health(self) -> Response:
        if self._draining or not self._runner.started:
            raise RequestError(503, "Draining", _DRAINING)
        running = sum(1 for agent in self._runner.agents() if agent["registered"])
        return _json(200, {"status": "ok", "mode": self._runner.mode, "agents": running})

    @api.get(
        "/metrics",
        response_class=Response,
        responses={
            200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format 0.0.4"},
            401: _ERRORS[401],
            503: _ERRORS[503],
        },
        summary="Prometheus metrics",
    )
    def metrics(self, request: Request) -> Response:
        text = self._runner.metrics_text() + request.app.state.http_metrics.render()
        return Response(text, media_type=CONTENT_TYPE)

    def check_health(self) -> None:
        """Serve's replica health check: a runner that stopped without a drain makes Serve replace the replica."""
        if not self._runner.started and not self._draining:
            raise RuntimeError("the actorflow runner of this replica is not running")

    def __del__(self) -> None:
        """Serve calls this after draining the replica's requests: drain dispatches, stop actors."""
        for runner in getattr(self, "_flows", {}).values():
            runner.stop()


def application(config: AgentFlowConfig, *, drain: Any = None, flows: Any = None) -> Application:
    """The Serve application for a loaded config, with its `[serve]` settings applied.

    `drain`: a `DrainSwitch` actor (see `actorflow.serve.drain`) that `actorflow serve` uses to
    drain every replica before removing the application. `flows`: more configs served beside
    `config` under `/v1/flows/{name}/…` (`config` is the first flow and keeps `/v1/dispatch`).
    """
    settings = config.serve
    otel = tracing.otel_env()  # the replicas' runners hand them on to their actors
    return ActorflowIngress.options(
        num_replicas=settings.num_replicas,
        # The app enforces max_ongoing_requests itself (503 JSON); Serve's limit leaves room
        # for those answers and for /v1/health while the replica is full.
        max_ongoing_requests=settings.max_ongoing_requests + _SERVE_HEADROOM,
        max_queued_requests=_SERVE_HEADROOM,
        graceful_shutdown_timeout_s=config.orchestration.timeout_seconds + _SHUTDOWN_GRACE_SECONDS,
        **({"ray_actor_options": {"runtime_env": {"env_vars": otel}}} if otel else {}),
    ).bind(config, drain, list(flows) if flows else None)


def build_app(args: dict[str, Any]) -> Application:
    """Serve application builder: `args` is `{"config": PATH, "env": NAME, "api_key_env": VAR, "journal": URL,
    "flows": [PATH, …]}` (see ServeArgs)."""
    options = ServeArgs.model_validate(args)
    config = load_config(options.config, env=options.env)
    if options.api_key_env:
        config = config.model_copy(update={"serve": config.serve.model_copy(update={"api_key_env": options.api_key_env})})
    if options.journal:
        config = config.model_copy(update={"runtime": config.runtime.model_copy(update={"journal": options.journal})})
    return application(config, flows=load_flows(options.flows, env=options.env) if options.flows else None)
