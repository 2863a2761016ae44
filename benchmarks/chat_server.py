"""A real OpenAI-compatible chat server for the tests and the LLM benchmark, on 127.0.0.1.

The tests run it in their own process (a thread); the benchmark runs it in a process of its
own (`python -m benchmarks.chat_server --port P --latency 0.05`), so that serving does not
share a GIL with the clients being measured.

`POST /v1/chat/completions`, streamed (SSE, with usage when `stream_options.include_usage`) or
not. Every request is recorded. What the next requests for a model do is scripted with
`plan(model, *steps)`: `"ok"`, `"no-usage"` (a server that ignores `stream_options`), an HTTP
status (`Fail(429, retry_after=0.2)`), or `Slow(s)` (starts streaming, then stalls `s`
seconds; `disconnected` is set when the client hangs up).
`latency` delays every reply (the benchmark's fixed model latency). Nothing real is called.
"""

from __future__ import annotations

import asyncio
import collections
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

__all__ = ["ChatServer", "Fail", "Slow", "free_port", "main"]


@dataclass(frozen=True)
class Fail:
    """Answer with an HTTP error status (and a Retry-After header when given)."""

    status: int
    retry_after: float | None = None


@dataclass(frozen=True)
class Slow:
    """Start the streamed reply, then stall for `seconds` before finishing it."""

    seconds: float


@dataclass
class Recorded:
    """One request the server received."""

    body: dict[str, Any]
    headers: dict[str, str]
    peer: tuple | None = None
    """The client's (host, port): one per HTTP connection."""
    at: float = field(default_factory=time.monotonic)

    @property
    def model(self) -> str:
        return self.body.get("model", "")

    def message(self, role: str) -> str | None:
        return next((m["content"] for m in self.body.get("messages", []) if m["role"] == role), None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def reply_text(body: dict[str, Any], count: int) -> str:
    """Deterministic and short: which model answered, and the request's number."""
    return f"Reply {count} from {body.get('model')}: noted."


class ChatServer:
    """Start with `start()` (or as a context manager); `url` is the host, `base_url` the `/v1` API."""

    def __init__(self, port: int | None = None, latency: float = 0.0, record: bool = True) -> None:
        self.port = port or free_port()
        self.requests: list[Recorded] = []
        self.latency = latency
        self.record = record
        self.disconnected = threading.Event()
        self._plans: dict[str, collections.deque] = collections.defaultdict(collections.deque)
        self._lock = threading.Lock()
        self._count = 0
        app = Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"])])
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                     lifespan="off", access_log=False))
        self._thread = threading.Thread(target=self._server.run, name="chat-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def start(self) -> ChatServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the test chat server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> ChatServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def plan(self, model: str, *steps: Any) -> None:
        """What the next requests for `model` do, in order (then "ok" again)."""
        with self._lock:
            self._plans[model].extend(steps)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._plans.clear()
            self.disconnected.clear()
            self._count = 0
            self.latency = 0.0

    def for_model(self, model: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.model == model]

    # -- the protocol --------------------------------------------------------------------------

    async def _chat(self, request: Request):
        body = await request.json()
        with self._lock:
            if self.record:
                peer = (request.client.host, request.client.port) if request.client else None
                self.requests.append(Recorded(body, dict(request.headers), peer))
            self._count += 1
            count = self._count
            plan = self._plans.get(body.get("model"))
            step = plan.popleft() if plan else "ok"
        if self.latency:
            await asyncio.sleep(self.latency)
        if isinstance(step, Fail):
            headers = {"retry-after": f"{step.retry_after:g}"} if step.retry_after is not None else {}
            error = {"message": f"scripted failure {step.status}", "type": "test", "code": step.status}
            return JSONResponse({"error": error}, status_code=step.status, headers=headers)
        text = reply_text(body, count)
        words = [w + " " for w in text.split(" ")]
        words[-1] = words[-1].rstrip()
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": len(words),
                 "total_tokens": prompt_tokens + len(words)}
        base = {"id": f"chatcmpl-{count}", "created": int(time.time()), "model": body.get("model")}
        if not body.get("stream"):
            message = {"role": "assistant", "content": text}
            return JSONResponse({**base, "object": "chat.completion", "usage": usage,
                                 "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]})
        include_usage = bool((body.get("stream_options") or {}).get("include_usage")) and step != "no-usage"
        return StreamingResponse(self._stream(base, words, usage if include_usage else None, step),
                                 media_type="text/event-stream")

    async def _stream(self, base: dict, words: list[str], usage: dict | None, step: Any):
        def event(choices: list, **extra: Any) -> str:
            return "data: " + json.dumps({**base, "object": "chat.completion.chunk", "choices": choices, **extra}) + "\n\n"

        try:
            yield event([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
            for i, word in enumerate(words):
                yield event([{"index": 0, "delta": {"content": word}, "finish_reason": None}])
                if i == 0 and isinstance(step, Slow):
                    await asyncio.sleep(step.seconds)
            yield event([{"index": 0, "delta": {}, "finish_reason": "stop"}])
            if usage is not None:
                yield event([], usage=usage)
            yield "data: [DONE]\n\n"
        except (asyncio.CancelledError, GeneratorExit):
            self.disconnected.set()  # the client hung up before the reply was complete
            raise


def main(argv: list[str] | None = None) -> None:
    """Serve until killed: `python -m benchmarks.chat_server --port P [--latency S]`."""
    import argparse

    parser = argparse.ArgumentParser(description="A local OpenAI-compatible chat server (fixed replies).")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each reply starts")
    args = parser.parse_args(argv)
    server = ChatServer(args.port, args.latency, record=False)
    print(f"listening on {server.url}", flush=True)
    server._server.run()


if __name__ == "__main__":
    main()
