"""The async client for OpenAI-compatible chat servers (vLLM, `swift deploy`, the stubs).

Requests go out through the OpenAI SDK's HTTP client over aiohttp (`DefaultAioHttpClient`), one
connection pool for all endpoints; this client picks the endpoint for every attempt
(`trivia.llm.endpoints`: least outstanding, ejection, panic mode) and retries with `stamina`:

- connection errors, timeouts, 429 and 5xx are retried up to `max_retries` times, with
  exponential backoff and jitter (`backoff_base_s`, capped at `backoff_max_s`), or after as long
  as a `Retry-After` asks (capped at `retry_after_max_s`); a retry prefers another endpoint.
  Other 4xx and replies that are not chat completions are not retried.
- `request_timeout_s` bounds each attempt from sending to the whole answer; `deadline` (an
  absolute `time.monotonic()`) bounds the call, slot waits and backoff included.
- `route_key` (a table's digest) sends the calls about one table to one endpoint, so that its
  prefix cache holds the table (`trivia.llm.affinity`).
- `resolve_every_s` > 0: each URL's host name stands for every address it resolves to (a
  headless Service's pods, compose's replicas), one endpoint each, resolved again at most every
  `resolve_every_s` seconds while calls are made (`trivia.llm.discovery`).

Each request is built here (the endpoint's URL parsed once, the JSON body, the Authorization
header) and sent with the SDK's HTTP client; the JSON reply is read here. `AsyncOpenAI`'s own
request pipeline (option models, URL merging, header building, idempotency keys) doubled the
client's CPU per call (1.2 against 0.6 ms in `benchmarks/bench_qa_transport.py`) on a path that
makes ~15,000 calls per optimiser step, and this client needs none of it. The first attempt
runs without the retry machinery; only a failed one enters `stamina`. Failures are `LLMError`s
(`trivia.llm.errors`, the one error tree).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from email.utils import parsedate_to_datetime
from typing import Any, Self

import aiohttp
import httpx2
import openai
import stamina

from trivia.llm.discovery import resolve_replicas
from trivia.llm.endpoints import Endpoint, EndpointPool, EndpointStats, parse_endpoints
from trivia.llm.errors import LLMError
from trivia.llm.metrics import LLM_METRICS, CallMetrics
from trivia.settings import CHAT

# Idle connections are dropped before the server's keep-alive timeout (uvicorn's and vLLM's 5 s),
# so a request is rarely sent on a connection the server is closing.
_KEEPALIVE_S = 4.0
# Connections are opened as needed: with replicas to discover, allow this many at full use.
_DISCOVERED_REPLICAS_MAX = 64


@dataclass(frozen=True, slots=True)
class ChatReply:
    """The first choice of a chat completion: its text and what the server said about it."""

    text: str  # "" when the server sent no text content (`content` null)
    finish_reason: str | None  # "stop", "length" (cut off by max_tokens), … as the server sent it
    model: str
    usage: dict[str, Any] | None


class _AttemptFailed(Exception):
    """One attempt failed; `retry` says whether another attempt may succeed."""

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        retry: bool,
        endpoint_fault: bool,
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.retry = retry
        self.endpoint_fault = endpoint_fault
        self.status_code = status_code
        self.retry_after = retry_after
        self.endpoint = ""


HttpClientFactory = Callable[[int], httpx2.AsyncClient]


class _ClosedOnExit:
    """`async with client:` closes it (`aclose`) on the way out."""

    async def aclose(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def aiohttp_client(max_connections: int) -> httpx2.AsyncClient:
    """The default HTTP client: the SDK's aiohttp transport, one connection per concurrent call."""
    limits = httpx2.Limits(max_connections=max_connections, keepalive_expiry=_KEEPALIVE_S)
    return openai.DefaultAioHttpClient(limits=limits, follow_redirects=False)


class ChatClient(_ClosedOnExit):
    """Chat completions from one or more OpenAI-compatible servers; see the module doc."""

    def __init__(
        self,
        endpoints: str | Sequence[str],
        *,
        model: str | None = None,
        api_key: str | None = None,
        max_concurrency_per_endpoint: int = CHAT.max_concurrency_per_endpoint,
        request_timeout_s: float = CHAT.request_timeout_s,
        max_retries: int = CHAT.max_retries,
        backoff_base_s: float = CHAT.backoff_base_s,
        backoff_max_s: float = CHAT.backoff_max_s,
        eject_after_failures: int = CHAT.eject_after_failures,
        eject_for_s: float = CHAT.eject_for_s,
        retry_after_max_s: float = CHAT.retry_after_max_s,
        extra_body: dict[str, Any] | None = None,
        metrics: CallMetrics = LLM_METRICS,
        name: str = "LLM",
        http_client: HttpClientFactory = aiohttp_client,
        clock: Callable[[], float] = time.monotonic,
        resolve_every_s: float = 0.0,
    ) -> None:
        """`extra_body` is merged into every chat request (vLLM's `top_k`, template kwargs, …).

        `model`: None asks `/v1/models` once. `metrics`: where attempts are counted. `name` says
        which client a log line or error is about ("QA", "VLM"). `http_client(max_connections)`
        makes the HTTP client under the SDK (one per event loop). `clock` times ejections.
        `resolve_every_s` > 0: one endpoint per address of each URL's host (module docstring).
        """
        if max_retries < 0 or resolve_every_s < 0:
            raise ValueError("max_retries and resolve_every_s must be >= 0")
        self._urls = parse_endpoints(endpoints)
        self._resolve_every = resolve_every_s
        self._replicas: dict[str, list[str]] = {}
        self._resolved_at: float | None = None
        self._resolving: asyncio.Task[None] | None = None
        self._pool = EndpointPool(
            self._urls,
            concurrency=max_concurrency_per_endpoint,
            eject_after_failures=eject_after_failures,
            eject_for_s=eject_for_s,
            metrics=metrics,
            name=name,
            clock=clock,
        )
        self._model = model
        self._model_lock = asyncio.Lock()
        # Without a key, no Authorization header at all.
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._concurrency = max_concurrency_per_endpoint
        self._request_timeout = request_timeout_s
        self._max_retries = max_retries
        self._backoff_base = backoff_base_s
        self._backoff_max = backoff_max_s
        self._retry_after_max = retry_after_max_s
        self._extra_body = dict(extra_body or {})
        self._name = name
        self._http_client = http_client
        self._loop: asyncio.AbstractEventLoop | None = None
        self._http: httpx2.AsyncClient | None = None
        self._targets: dict[str, tuple[httpx2.URL, httpx2.URL]] = {}  # url: (chat, models)

    # public API ----------------------------------------------------------------------------
    async def chat(
        self,
        messages: list[dict[str, Any]],
        *,
        temperature: float = 0.0,
        max_tokens: int = 64,
        deadline: float | None = None,
        route_key: str | None = None,
        whole: bool = False,
        **body: Any,
    ) -> ChatReply:
        """The first choice of a chat completion of `messages`; raises `LLMError`.

        `body` adds or overrides request fields (after `extra_body`): `top_p`, `seed`, ….
        `route_key` goes to the endpoint choice (`EndpointPool.pick`). `whole`: a reply cut at
        `max_tokens` (finish "length") or without text is a failed attempt of kind "truncated",
        retried like the others.
        """
        model = self._model or await self.model_name(deadline=deadline)
        request = {
            "model": model,
            "messages": messages,
            "temperature": temperature,
            "max_tokens": max_tokens,
            **self._extra_body,
            **body,
        }
        reply: ChatReply = await self._call("chat", request, deadline, route_key, whole=whole)
        return reply if reply.model else replace(reply, model=model)

    async def model_name(self, *, deadline: float | None = None) -> str:
        """The model to ask: the one given, else the first that `/v1/models` lists."""
        if self._model:
            return self._model
        await self._bind_to_running_loop()
        async with self._model_lock:
            if not self._model:
                payload = await self._call("models", None, deadline, None)
                try:
                    self._model = str(payload["data"][0]["id"])
                except (KeyError, IndexError, TypeError):
                    raise LLMError("/v1/models lists no model", kind="bad_response") from None
        return self._model

    def stats(self) -> list[EndpointStats]:
        """Per-endpoint outstanding, ejected, ok and failed counts."""
        return self._pool.stats()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._bind_to_running_loop()
        if self._http is not None:
            await self._http.aclose()

    # internals -----------------------------------------------------------------------------
    async def _bind_to_running_loop(self) -> None:
        """Use this client from a new event loop (e.g. one `asyncio.run` per job).

        Slots and connections belong to the loop that made them: on a new loop the slots start
        empty and a new pool is made. The old pool is closed at once when its loop has ended
        (its sockets go with the garbage collector), else on that loop when it next runs.
        """
        loop = asyncio.get_running_loop()
        if loop is self._loop:
            return
        old_loop, self._loop = self._loop, loop
        old_http = self._http
        replicas = len(self._pool.endpoints)
        if self._resolve_every:
            replicas = max(replicas, _DISCOVERED_REPLICAS_MAX)
        self._http = self._http_client(self._concurrency * replicas)
        self._resolving = None
        if old_loop is None or old_http is None:
            return
        self._pool.new_loop()
        self._model_lock = asyncio.Lock()
        if old_loop.is_closed():
            await old_http.aclose()  # nothing is left to wait for on a closed loop
        else:
            asyncio.run_coroutine_threadsafe(old_http.aclose(), old_loop)

    def _request(self, ep: Endpoint, what: str, body: dict[str, Any] | None) -> httpx2.Request:
        targets = self._targets.get(ep.url)
        if targets is None:
            targets = self._targets[ep.url] = (
                httpx2.URL(f"{ep.url}/v1/chat/completions"),
                httpx2.URL(f"{ep.url}/v1/models"),
            )
        if what == "chat":
            content = json.dumps(body, separators=(",", ":")).encode()
            return httpx2.Request("POST", targets[0], headers=self._headers, content=content)
        return httpx2.Request("GET", targets[1], headers=self._headers)

    async def _discover(self) -> None:
        """Resolve the URLs' host names when due; the first time, every caller waits for it."""
        if not self._resolve_every:
            return
        due = self._resolved_at is None or (
            time.monotonic() - self._resolved_at >= self._resolve_every
        )
        if due and self._resolving is None:
            self._resolving = asyncio.ensure_future(self._resolve())
        if self._resolved_at is None and self._resolving is not None:
            await asyncio.shield(self._resolving)

    async def _resolve(self) -> None:
        try:
            self._replicas = await resolve_replicas(self._urls, self._replicas)
            self._pool.set_urls([url for urls in self._replicas.values() for url in urls])
        finally:
            self._resolved_at = time.monotonic()
            self._resolving = None

    def _retry_wait(self, exc: Exception) -> bool | float:
        """stamina's hook: retry or not, and how long a Retry-After asks to wait."""
        if not isinstance(exc, _AttemptFailed) or not exc.retry:
            return False
        if exc.retry_after is not None:
            return min(exc.retry_after, self._retry_after_max)
        return True

    async def _call(
        self,
        what: str,
        request: dict[str, Any] | None,
        deadline: float | None,
        key: str | None,
        *,
        whole: bool = False,
    ) -> Any:
        """The reply of a chat call or the JSON of a models call, with retries; or `LLMError`."""
        await self._bind_to_running_loop()
        await self._discover()
        tries = 0
        last: _AttemptFailed | None = None
        avoid: Endpoint | None = None

        async def attempt_once() -> Any:
            nonlocal tries, last, avoid
            ep = self._pool.pick(key, avoid=avoid)
            avoid = ep
            tries += 1
            try:
                payload = await self._attempt(ep, what, request)
                return payload if what == "models" else _reply(payload, whole)
            except _AttemptFailed as failure:
                failure.endpoint = ep.label
                last = failure
                raise

        try:
            async with asyncio.timeout_at(deadline):
                try:
                    return await attempt_once()
                except _AttemptFailed as failure:
                    if not self._max_retries or self._retry_wait(failure) is False:
                        raise
                # Retries: stamina sees the first failure again, then waits before each attempt.
                replay: _AttemptFailed | None = last
                async for attempt in stamina.retry_context(
                    on=self._retry_wait,
                    attempts=self._max_retries + 1,
                    timeout=None,
                    wait_initial=self._backoff_base,
                    wait_max=self._backoff_max,
                    wait_jitter=self._backoff_base,
                ):
                    with attempt:
                        if replay is not None:
                            failed, replay = replay, None
                            raise failed
                        return await attempt_once()
        except TimeoutError:
            where = f" to {last.endpoint}" if last else ""
            after = f" after {last}" if last else ""
            raise LLMError(
                f"{self._name} call{where}: the deadline passed{after}",
                endpoint=last.endpoint if last else None,
                status_code=last.status_code if last else None,
                kind="deadline",
            ) from None
        except _AttemptFailed as failure:
            raise LLMError(
                f"{self._name} call to {failure.endpoint} failed after {tries} "
                f"attempt{'s' if tries > 1 else ''}: {failure}",
                endpoint=failure.endpoint,
                status_code=failure.status_code,
                kind=failure.kind,
            ) from None
        raise AssertionError("unreachable: stamina either returns or raises")

    async def _attempt(self, ep: Endpoint, what: str, request: dict[str, Any] | None) -> Any:
        probe = ep.probing  # only one attempt at a time probes an endpoint: this one
        ep.outstanding += 1
        try:
            async with ep.slots:
                return await self._send(ep, what, request)
        finally:
            ep.outstanding -= 1
            if probe and ep.probing:  # cancelled before the probe resolved
                ep.probing = False

    async def _send(self, ep: Endpoint, what: str, request: dict[str, Any] | None) -> Any:
        assert self._http is not None  # bound to the running loop by `_call`
        started = time.monotonic()
        status = "200"
        try:
            try:
                async with asyncio.timeout(self._request_timeout):
                    response = await self._http.send(self._request(ep, what, request))
            except TimeoutError:
                status = "timeout"
                raise _AttemptFailed(
                    f"no answer within {self._request_timeout:g} s",
                    kind="timeout",
                    retry=True,
                    endpoint_fault=True,
                ) from None
            except (aiohttp.ClientError, httpx2.TransportError) as exc:
                status, message = _connection_failure(exc)
                kind = "timeout" if status == "timeout" else "connect"
                raise _AttemptFailed(message, kind=kind, retry=True, endpoint_fault=True) from None
            code = response.status_code
            if not 200 <= code < 300:
                status = str(code)
                detail = response.text[:200].replace("\n", " ")
                raise _AttemptFailed(
                    f"HTTP {code}: {detail}" if detail else f"HTTP {code}",
                    kind="http",
                    retry=code == 429 or code >= 500,
                    endpoint_fault=code >= 500,
                    status_code=code,
                    retry_after=retry_after(response.headers.get("retry-after")),
                )
            try:
                payload = json.loads(response.content)
            except ValueError:
                raise _AttemptFailed(
                    f"HTTP {code} with a body that is not JSON",
                    kind="bad_response",
                    retry=False,
                    endpoint_fault=False,
                    status_code=code,
                ) from None
        except _AttemptFailed as failure:
            self._pool.failed(ep, endpoint_fault=failure.endpoint_fault, reason=failure)
            if what == "chat":
                ep.count(status, time.monotonic() - started)
            raise
        self._pool.succeeded(ep)
        if what == "chat":
            ep.count(status, time.monotonic() - started)
        return payload


class ChatClientHolder(_ClosedOnExit):
    """A client built on a `ChatClient` it holds (`client`): the QA and the VLM clients."""

    client: ChatClient

    def stats(self) -> list[EndpointStats]:
        """Per-endpoint outstanding, ejected, ok and failed counts."""
        return self.client.stats()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.client.aclose()


def _reply(payload: Any, whole: bool) -> ChatReply:
    """The first choice of a chat completion, or why it cannot be used."""
    try:
        choice = payload["choices"][0]
        content = choice["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise _AttemptFailed(
            "response has no choices[0].message",
            kind="bad_response",
            retry=False,
            endpoint_fault=False,
        ) from None
    finish = choice.get("finish_reason")
    text = content if isinstance(content, str) else ""
    if whole and (finish == "length" or not text.strip()):
        raise _AttemptFailed(
            "the reply stopped at max_tokens (finish_reason length)"
            if finish == "length"
            else "the reply has no text",
            kind="truncated",
            retry=True,
            endpoint_fault=False,
        )
    usage = payload.get("usage")
    return ChatReply(
        text=text,
        finish_reason=finish if isinstance(finish, str) else None,
        model=str(payload.get("model") or ""),
        usage=usage if isinstance(usage, dict) else None,
    )


def _connection_failure(exc: Exception) -> tuple[str, str]:
    """(status label, message) for a failure without an HTTP status, from the cause chain.

    The aiohttp transport reports a refused connection as a connect *timeout*, so the aiohttp
    error underneath decides: "connect_error", "timeout" or "protocol_error".
    """
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, (aiohttp.ClientConnectorError, httpx2.ConnectError)):
            return "connect_error", f"cannot connect ({cause})"
        if isinstance(cause, (aiohttp.ServerTimeoutError, httpx2.ReadTimeout)):
            return "timeout", "timed out"
        if isinstance(cause, aiohttp.ClientError):
            return "protocol_error", f"connection failed ({type(cause).__name__}: {cause})"
        cause = cause.__cause__ or cause.__context__
    return "protocol_error", f"connection failed ({type(exc).__name__}: {exc})"


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
