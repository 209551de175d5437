"""The async client for OpenAI-compatible chat servers (vLLM, `swift deploy`, the stubs).

One `chat` call sends one chat completion request and returns the reply (`ChatReply`); the
answering client (`trivia.qa.client.QAClient`) and the VLM client (`trivia.engine.vlm`) are
built on it and share everything below.

How calls are spread and retried:
- Balancing: each attempt goes to the usable endpoint with the fewest outstanding requests
  (in flight plus queued for a slot); each endpoint serves at most
  `max_concurrency_per_endpoint` at once, the rest wait for a slot.
- Retries: connection errors, timeouts, 429 and 5xx are retried up to `max_retries` times, with
  exponential backoff and full jitter (`uniform(0, min(backoff_max_s, backoff_base_s * 2**k))`),
  and never sooner than a `Retry-After` asks (capped at `retry_after_max_s`). A retry prefers
  another endpoint. Other 4xx are the request's fault and are not retried.
- Ejection: `eject_after_failures` failures in a row (not 429, not 4xx) take an endpoint out for
  `eject_for_s`; after that one request probes it (half-open): success brings it back, failure
  ejects it again. Ejection only steers traffic between healthy and unhealthy endpoints: while
  every endpoint is ejected (panic mode, as Envoy's panic threshold), attempts go to the ejected
  ones anyway, least outstanding first and then the one ejected longest ago, so one endpoint
  that blips is not out of use for `eject_for_s`; any success brings it back at once.
- Time: `request_timeout_s` bounds each attempt from sending to the whole answer; `deadline`
  (an absolute `time.monotonic()`) bounds the call, slot waits and backoff included. A call whose
  deadline has passed fails at once.
Every failure that survives the retries is an `LLMError` (a subclass, `error_type`, for client
families that name their own) naming the endpoint and what went wrong; the API key is sent as a
bearer token and appears nowhere else. The transport is in `trivia.llm.transport`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Self

import aiohttp
import httpx

from trivia.llm.endpoints import Endpoint, EndpointStats, parse_endpoints
from trivia.llm.errors import LLMError
from trivia.llm.metrics import LLM_METRICS, CallMetrics
from trivia.llm.transport import aiohttp_transport, retry_after, transport_failure

__all__ = ["ChatClient", "ChatReply"]

_log = logging.getLogger(__name__)

_RETRY_STATUS = 429


@dataclass(frozen=True, slots=True)
class ChatReply:
    """The first choice of a chat completion: its text and what the server said about it."""

    text: str  # "" when the server sent no text content
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


class ChatClient:
    """Chat completions from one or more OpenAI-compatible servers; see the module doc."""

    error_type: ClassVar[type[LLMError]] = LLMError
    """What `chat` raises; client families override it with a subclass of `LLMError`."""

    def __init__(
        self,
        endpoints: str | Sequence[str],
        *,
        model: str | None = None,
        api_key: str | None = None,
        max_concurrency_per_endpoint: int = 64,
        request_timeout_s: float = 60.0,
        max_retries: int = 4,
        backoff_base_s: float = 0.25,
        backoff_max_s: float = 8.0,
        eject_after_failures: int = 5,
        eject_for_s: float = 30.0,
        extra_body: dict[str, Any] | None = None,
        retry_after_max_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        metrics: CallMetrics = LLM_METRICS,
        name: str = "LLM",
    ) -> None:
        """`extra_body` is merged into every chat request (vLLM's `top_k`, template kwargs, …).

        `model`: None asks `/v1/models` once. `transport`: any httpx transport instead of the
        aiohttp-backed one (`trivia.llm.transport.aiohttp_transport`). `metrics`: where attempts
        are counted. `name` says which client a log line or error is about ("QA", "VLM").
        """
        if max_concurrency_per_endpoint < 1:
            raise ValueError("max_concurrency_per_endpoint must be at least 1")
        if max_retries < 0 or eject_after_failures < 1:
            raise ValueError("max_retries must be >= 0 and eject_after_failures >= 1")
        self._endpoints = [
            Endpoint(url, max_concurrency_per_endpoint, metrics)
            for url in parse_endpoints(endpoints)
        ]
        self._model = model
        self._model_lock = asyncio.Lock()
        self._concurrency = max_concurrency_per_endpoint
        self._loop: asyncio.AbstractEventLoop | None = None
        self._request_timeout = request_timeout_s
        self._max_retries = max_retries
        self._backoff_base = backoff_base_s
        self._backoff_max = backoff_max_s
        self._eject_after = eject_after_failures
        self._eject_for = eject_for_s
        self._retry_after_max = retry_after_max_s
        self._extra_body = dict(extra_body or {})
        self._name = name
        self._next = 0  # rotates ties between equally loaded endpoints
        self._panicking = False  # every endpoint ejected: sending to them anyway
        self._headers = {"accept": "application/json", "accept-encoding": "identity"}
        if api_key:
            self._headers["authorization"] = f"Bearer {api_key}"
        self._given_transport = transport
        self._http = self._http_client()

    # public API ----------------------------------------------------------------------------
    async def chat(
        self,
        messages: list[dict[str, Any]],
        *,
        temperature: float = 0.0,
        max_tokens: int = 64,
        deadline: float | None = None,
        **body: Any,
    ) -> ChatReply:
        """The first choice of a chat completion of `messages`; raises `error_type`.

        `body` adds or overrides request fields (after `extra_body`): `top_p`, `seed`, ….
        """
        if deadline is not None and time.monotonic() >= deadline:
            raise self.error_type("deadline passed before the call", kind="deadline")
        model = self._model or await self.model_name(deadline=deadline)
        request = {
            "model": model,
            "messages": messages,
            "temperature": temperature,
            "max_tokens": max_tokens,
            **self._extra_body,
            **body,
        }
        payload = await self._call(
            "POST", json.dumps(request, ensure_ascii=False).encode(), deadline
        )
        try:
            choice = payload["choices"][0]
            content = choice["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise self.error_type(
                "response has no choices[0].message", kind="bad_response"
            ) from None
        finish = choice.get("finish_reason")
        usage = payload.get("usage")
        return ChatReply(
            text=content if isinstance(content, str) else "",
            finish_reason=finish if isinstance(finish, str) else None,
            model=str(payload.get("model") or model),
            usage=usage if isinstance(usage, dict) else None,
        )

    async def model_name(self, *, deadline: float | None = None) -> str:
        """The model to ask: the one given, else the first that `/v1/models` lists."""
        if self._model:
            return self._model
        await self._bind_to_running_loop()
        async with self._model_lock:
            if not self._model:
                payload = await self._call("GET", None, deadline)
                try:
                    self._model = str(payload["data"][0]["id"])
                except (KeyError, IndexError, TypeError):
                    raise self.error_type(
                        "/v1/models lists no model", kind="bad_response"
                    ) from None
        return self._model

    def stats(self) -> list[EndpointStats]:
        """Per-endpoint outstanding, ejected, ok and failed counts."""
        now = time.monotonic()
        return [ep.snapshot(now) for ep in self._endpoints]

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._bind_to_running_loop()
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # internals -----------------------------------------------------------------------------
    def _http_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            headers=self._headers,
            timeout=None,  # each attempt is bounded by `asyncio.timeout_at` instead
            transport=self._given_transport
            or aiohttp_transport(self._concurrency * len(self._endpoints)),
            follow_redirects=False,
        )

    def _pick(self, avoid: Endpoint | None) -> Endpoint:
        """The least loaded usable endpoint (ejected ones excluded, one probe when due); in panic
        mode, when none is usable, the least loaded ejected one, ejected longest ago first."""
        now = time.monotonic()
        best: Endpoint | None = None
        count = len(self._endpoints)
        start = self._next
        self._next = (start + 1) % count
        for i in range(count):
            ep = self._endpoints[(start + i) % count]
            if not ep.usable(now) or (ep is avoid and count > 1):
                continue
            if best is None or ep.outstanding < best.outstanding:
                best = ep
        if best is None and avoid is not None and avoid.usable(now):
            best = avoid  # the only usable endpoint is the one that just failed
        if best is None:
            if not self._panicking:
                self._panicking = True
                _log.warning(
                    "every %s endpoint is ejected: sending to them anyway (panic mode)", self._name
                )
            others = [ep for ep in self._endpoints if ep is not avoid] or self._endpoints
            return min(others, key=lambda ep: (ep.outstanding, ep.ejected_until))
        if self._panicking:
            self._panicking = False
            _log.info("%s endpoint %s is usable again: panic mode over", self._name, best.label)
        if best.ejected_until:
            best.probing = True  # half-open: this attempt is the probe
        return best

    def _succeeded(self, ep: Endpoint) -> None:
        ep.ok += 1
        ep.consecutive_failures = 0
        if ep.ejected_until:
            _log.info("%s endpoint %s answered again: back in service", self._name, ep.label)
        ep.ejected_until = 0.0
        ep.probing = False

    def _eject(self, ep: Endpoint, failure: _AttemptFailed) -> None:
        if not ep.ejected_until or ep.probing:
            _log.warning(
                "%s endpoint %s ejected for %g s after %s",
                self._name,
                ep.label,
                self._eject_for,
                failure,
            )
        ep.ejected_until = time.monotonic() + self._eject_for

    def _failed(self, ep: Endpoint, failure: _AttemptFailed) -> None:
        ep.failed += 1
        if ep.probing:
            # A probe that got a 4xx or 429 found the server alive; anything else re-ejects.
            if failure.kind == "http" and not failure.endpoint_fault:
                ep.ejected_until = 0.0
            else:
                self._eject(ep, failure)
            ep.probing = False
            return
        if failure.endpoint_fault:
            ep.consecutive_failures += 1
            if ep.consecutive_failures >= self._eject_after:
                self._eject(ep, failure)

    async def _bind_to_running_loop(self) -> None:
        """Use this client from a new event loop (e.g. one `asyncio.run` per job).

        Semaphores and connections belong to the loop that made them; on a new loop the slots
        start empty and the default transport starts a new pool. The old pool is closed: at once
        when its loop has ended (its sockets go with the garbage collector), else on that loop
        when it next runs.
        """
        loop = asyncio.get_running_loop()
        if loop is self._loop:
            return
        old_loop, self._loop = self._loop, loop
        if old_loop is None:
            return
        for ep in self._endpoints:
            ep.slots = asyncio.Semaphore(self._concurrency)
            ep.outstanding = 0
            ep.probing = False
        self._model_lock = asyncio.Lock()
        if self._given_transport is None:
            old_http, self._http = self._http, self._http_client()
            if old_loop.is_closed():
                await old_http.aclose()  # nothing is left to wait for on a closed loop
            else:
                asyncio.run_coroutine_threadsafe(old_http.aclose(), old_loop)

    async def _call(self, method: str, body: bytes | None, deadline: float | None) -> Any:
        """The JSON answer of a chat (POST) or models (GET) call, with retries; or the error."""
        await self._bind_to_running_loop()
        avoid: Endpoint | None = None
        for attempt in range(self._max_retries + 1):
            ep = self._pick(avoid)
            where = ep.label
            try:
                return await self._attempt(ep, method, body, deadline)
            except _AttemptFailed as exc:
                failure = exc
            avoid = ep
            if not failure.retry or attempt == self._max_retries:
                break
            delay = random.uniform(0.0, min(self._backoff_max, self._backoff_base * 2**attempt))
            if failure.retry_after is not None:
                delay = max(delay, min(failure.retry_after, self._retry_after_max))
            if deadline is not None and time.monotonic() + delay >= deadline:
                raise self.error_type(
                    f"{self._name} call to {where} failed ({failure}); "
                    "the deadline leaves no time to retry",
                    endpoint=where,
                    status_code=failure.status_code,
                    kind="deadline",
                )
            _log.debug(
                "%s call to %s failed (%s); retrying in %.3f s", self._name, where, failure, delay
            )
            await asyncio.sleep(delay)
        tries = attempt + 1
        raise self.error_type(
            f"{self._name} call to {where} failed after {tries} "
            f"attempt{'s' if tries > 1 else ''}: {failure}",
            endpoint=where,
            status_code=failure.status_code,
            kind=failure.kind,
        )

    async def _attempt(
        self, ep: Endpoint, method: str, body: bytes | None, deadline: float | None
    ) -> Any:
        chat = method == "POST"
        probe = ep.probing  # only one attempt at a time probes an endpoint: this one
        ep.outstanding += 1
        try:
            try:
                async with asyncio.timeout_at(deadline):
                    await ep.slots.acquire()
            except TimeoutError:
                raise _AttemptFailed(
                    "deadline passed waiting for a free slot",
                    kind="deadline",
                    retry=False,
                    endpoint_fault=False,
                ) from None
            try:
                return await self._send(ep, chat, body, deadline)
            finally:
                ep.slots.release()
        finally:
            ep.outstanding -= 1
            if probe and ep.probing:  # cancelled or timed out before the probe resolved
                ep.probing = False

    async def _send(
        self, ep: Endpoint, chat: bool, body: bytes | None, deadline: float | None
    ) -> Any:
        started = time.monotonic()
        limit = started + self._request_timeout
        by_deadline = deadline is not None and deadline < limit
        if by_deadline:
            assert deadline is not None
            limit = deadline
        status: str
        try:
            try:
                async with asyncio.timeout_at(limit):
                    if chat:
                        response = await self._http.post(
                            ep.chat_url,
                            content=body,
                            headers={"content-type": "application/json"},
                        )
                    else:
                        response = await self._http.get(ep.models_url)
            except TimeoutError:
                status = "timeout"
                raise _AttemptFailed(
                    "the deadline passed during the call"
                    if by_deadline
                    else f"no answer within {self._request_timeout:g} s",
                    kind="deadline" if by_deadline else "timeout",
                    retry=not by_deadline,
                    endpoint_fault=not by_deadline,
                ) from None
            except (httpx.TransportError, aiohttp.ClientError) as exc:
                status = transport_failure(exc)
                if status == "connect_error":
                    message, kind = f"cannot connect ({exc})", "connect"
                elif status == "timeout":
                    message, kind = "timed out", "timeout"
                else:
                    message, kind = f"connection failed ({type(exc).__name__}: {exc})", "connect"
                raise _AttemptFailed(message, kind=kind, retry=True, endpoint_fault=True) from None
            code = response.status_code
            status = str(code)
            if code >= 400:
                wait = retry_after(response.headers.get("retry-after"))
                detail = response.text[:200].replace("\n", " ")
                raise _AttemptFailed(
                    f"HTTP {code}: {detail}" if detail else f"HTTP {code}",
                    kind="http",
                    retry=code == _RETRY_STATUS or code >= 500,
                    endpoint_fault=code >= 500,
                    status_code=code,
                    retry_after=wait,
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
            self._failed(ep, failure)
            if chat:
                ep.count(status)
                ep.latency.observe(time.monotonic() - started)
            raise
        self._succeeded(ep)
        if chat:
            ep.count(status)
            ep.latency.observe(time.monotonic() - started)
        return payload
