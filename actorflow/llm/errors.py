"""What an LLM agent's failures are called, and how the openai client's errors map onto them.

    LLMError                          root: a call to the model failed (`.agent`, `.provider`)
    ├── LLMUnavailableError           the provider cannot serve now; retryable (a ConnectionError)
    │   ├── LLMConnectionError        unreachable: refused, DNS, reset (names the URL and cause)
    │   ├── LLMRateLimitError         HTTP 429 (`.retry_after` from Retry-After)
    │   └── LLMServerError            HTTP 5xx (`.retry_after` from Retry-After)
    ├── LLMTimeoutError               no reply within [llm] timeout_seconds; retryable (a TimeoutError)
    ├── LLMModelNotFoundError         HTTP 404: the server does not have the model; not retried
    ├── LLMAuthenticationError        HTTP 401/403: names the key's variable; not retried
    ├── LLMRequestError               any other refusal (400, 422, …); not retried
    └── LLMPromptError                the prompt template names a key the input data lacks

The runtime retries a failure when a class name in its MRO is in `retryable_errors`, whose
defaults include ConnectionError and TimeoutError: that is why the transient classes derive
from them. `retry_after` (seconds) makes the runtime wait at least that long before retrying.
The mapping happens once, here, at the client boundary; messages never contain the API key.
"""

from __future__ import annotations

import email.utils
import time
from typing import Any

from actorflow.config.llm import LLMSettings

__all__ = [
    "LLMError",
    "LLMUnavailableError",
    "LLMConnectionError",
    "LLMRateLimitError",
    "LLMServerError",
    "LLMTimeoutError",
    "LLMModelNotFoundError",
    "LLMAuthenticationError",
    "LLMRequestError",
    "LLMPromptError",
    "map_error",
]


class LLMError(Exception):
    """A call to the model failed."""

    def __init__(self, message: str, *, agent: str = "", provider: str = "",
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.agent = agent
        self.provider = provider
        self.retry_after = retry_after
        """Seconds the provider asked us to wait before trying again (Retry-After), or None."""

    def __reduce__(self):
        return (_rebuild, (type(self), str(self), self.agent, self.provider, self.retry_after))


def _rebuild(cls: type[LLMError], message: str, agent: str, provider: str,
             retry_after: float | None) -> LLMError:
    return cls(message, agent=agent, provider=provider, retry_after=retry_after)


class LLMUnavailableError(LLMError, ConnectionError):
    """The provider cannot serve the call right now; retrying later may work."""


class LLMConnectionError(LLMUnavailableError):
    """The provider is unreachable."""


class LLMRateLimitError(LLMUnavailableError):
    """HTTP 429: too many requests."""


class LLMServerError(LLMUnavailableError):
    """HTTP 5xx: the server failed."""


class LLMTimeoutError(LLMError, TimeoutError):
    """No reply within the client's `timeout_seconds`."""


class LLMModelNotFoundError(LLMError):
    """HTTP 404: the server does not serve this model."""


class LLMAuthenticationError(LLMError):
    """HTTP 401/403: the API key is missing, wrong or not allowed."""


class LLMRequestError(LLMError):
    """The server refused the request (400, 422, …)."""


class LLMPromptError(LLMError):
    """The prompt template cannot be rendered from the input data."""


def map_error(err: Exception, settings: LLMSettings, *, secret: str | None = None) -> LLMError:
    """The LLMError for an exception of the openai client (others are returned wrapped as LLMError)."""
    import openai
    s = settings
    who = f'LLM agent "{s.agent}" ({s.provider}, model "{s.model}" at {s.display_url})'
    common = {"agent": s.agent, "provider": s.provider}

    def clean(text: str) -> str:
        return text.replace(secret, "***") if secret else text

    if isinstance(err, openai.APITimeoutError):
        return LLMTimeoutError(f"{who}: no reply within [llm] timeout_seconds = {s.timeout_seconds}", **common)
    if isinstance(err, openai.APIConnectionError):
        return LLMConnectionError(
            f"{who}: cannot reach the provider: {clean(_root_cause(err))}; is the "
            f"server running{' (ollama serve)' if s.kind == 'ollama' else ''} and is base_url right?", **common)
    if isinstance(err, openai.APIStatusError):
        status, detail = err.status_code, clean(_server_message(err))
        retry_after = _retry_after(err.response.headers)
        if status in (401, 403):
            if s.api_key_env:
                what = (f"the provider refused the API key in ${s.api_key_env}; check that it holds "
                        "a valid key with access to this model")
            else:
                what = ("the provider wants an API key and none is configured; set api_key_env to "
                        "the name of the environment variable that holds it")
            return LLMAuthenticationError(f"{who}: HTTP {status}: {what}", **common)
        if status == 404:
            return LLMModelNotFoundError(
                f'{who}: HTTP 404: the server has no model "{s.model}"'
                f"{' (ollama pull ' + s.model + ')' if s.kind == 'ollama' else ''}; check the model "
                f"name{': ' + detail if detail else ''}", **common)
        wait = f"; retry after {retry_after:g}s" if retry_after is not None else ""
        if status == 429:
            return LLMRateLimitError(f"{who}: HTTP 429: rate limited{wait}{': ' + detail if detail else ''}",
                                     retry_after=retry_after, **common)
        if status >= 500:
            return LLMServerError(f"{who}: HTTP {status}: server error{wait}{': ' + detail if detail else ''}",
                                  retry_after=retry_after, **common)
        return LLMRequestError(f"{who}: HTTP {status}: the server refused the request"
                               f"{': ' + detail if detail else ''}", **common)
    if type(err).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore", "httpcore2"):
        if "Timeout" in type(err).__name__:  # the server went quiet in the middle of the reply
            return LLMTimeoutError(f"{who}: the reply stalled for longer than [llm] timeout_seconds = "
                                   f"{s.timeout_seconds}", **common)
        return LLMConnectionError(f"{who}: the connection failed during the reply: "
                                  f"{clean(_root_cause(err))}", **common)
    return LLMError(f"{who}: {type(err).__name__}: {clean(str(err))}", **common)


def _root_cause(err: BaseException) -> str:
    """The innermost cause of a connection failure, e.g. `ConnectError: [Errno 111] Connection refused`."""
    seen = err
    while seen.__cause__ is not None or seen.__context__ is not None:
        seen = seen.__cause__ or seen.__context__  # type: ignore[assignment]
    text = str(seen).strip() or str(err).strip()
    return f"{type(seen).__name__}: {text}" if text else type(seen).__name__


def _server_message(err: Any) -> str:
    body = getattr(err, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else inner
        if message:
            return str(message)[:300]
    return ""


def _retry_after(headers: Any) -> float | None:
    """Seconds from `retry-after-ms` or `Retry-After` (seconds or an HTTP date)."""
    try:
        if headers.get("retry-after-ms"):
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        value = headers.get("retry-after")
        if not value:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        return None
