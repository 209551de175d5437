"""The async client for OpenAI-compatible answering servers (vLLM, `swift deploy`, the stubs).

One call asks one question about one table (`prompts.build_messages`) with temperature 0 and a
small `max_tokens`, and returns the raw completion text; the caller extracts `<answer>`.

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
Every failure that survives the retries is a `QAError` naming the endpoint and what went wrong;
the API key is sent as a bearer token and appears nowhere else.

Transport: httpx on aiohttp's connection pool (`httpx_aiohttp`), with keep-alive and one
connection per concurrent call. httpx's own pool (httpcore 1.0) rescans its connections for every
queued request and churns connections: 6.7-8.8 ms of CPU per call at 64 concurrent, against
0.36-0.48 ms on aiohttp (a hand-written HTTP/1.1 transport took 0.30 ms, not worth a parser of
our own; `benchmarks/bench_qa_transport.py`). The answering path makes ~15,000 calls per
optimiser step. aiohttp's errors are classified here like httpx's (connect, timeout, protocol).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import random
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from trivia.qa.errors import QAError
from trivia.qa.metrics import QA_CALLS, QA_LATENCY
from trivia.qa.prompts import build_messages

__all__ = [
    "DEFAULT_EXTRA_BODY",
    "EndpointStats",
    "QAClient",
    "aiohttp_transport",
    "parse_endpoints",
]

_log = logging.getLogger(__name__)

# Qwen3 thinks before answering unless told not to; vLLM and swift pass this to the chat template.
DEFAULT_EXTRA_BODY: dict[str, Any] = {"chat_template_kwargs": {"enable_thinking": False}}

_RETRY_STATUS = 429
# Idle connections are dropped before the server's keep-alive timeout (uvicorn's and vLLM's 5 s),
# so a request is rarely sent on a connection the server is closing (aiohttp resends only
# idempotent requests, and chat calls are POSTs).
_KEEPALIVE_S = 4.0


def aiohttp_transport(max_connections: int) -> httpx.AsyncBaseTransport:
    """The client's default transport: httpx over an aiohttp pool of `max_connections`.

    The aiohttp session is made on first use, inside the running event loop; hosts are resolved
    once per new connection and cached (aiohttp's DNS cache), never per request; no cookies.
    TLS verification is httpx's (certifi, or `SSL_CERT_FILE`).
    """

    def session() -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=max_connections, keepalive_timeout=_KEEPALIVE_S, ssl=_tls_context()
        )
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())

    return AiohttpTransport(verify=_tls_context(), client=session)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """httpx's verifying context, made once per process (loading the CA bundle takes ~30 ms)."""
    return httpx.create_ssl_context()


def parse_endpoints(endpoints: str | Sequence[str]) -> list[str]:
    """Base URLs from one URL, a comma-separated string, or a list of either.

    `http://host:8000`, `http://host:8000/` and `http://host:8000/v1` all give
    `http://host:8000`; a URL without a scheme gets `http://`.
    """
    items = [endpoints] if isinstance(endpoints, str) else list(endpoints)
    urls: list[str] = []
    for item in items:
        for part in item.split(","):
            url = part.strip().rstrip("/")
            if not url:
                continue
            if "://" not in url:
                url = f"http://{url}"
            if url.endswith("/v1"):
                url = url[: -len("/v1")]
            parsed = httpx.URL(url)
            if parsed.scheme not in ("http", "https") or not parsed.host:
                raise ValueError(f"not an http(s) endpoint: {_display(url)}")
            urls.append(url)
    if not urls:
        raise ValueError("no QA endpoint given")
    return urls


def _display(url: str) -> str:
    """The URL without any user:password part, for logs, errors and metric labels."""
    try:
        return str(httpx.URL(url).copy_with(username=None, password=None))
    except (httpx.InvalidURL, TypeError):
        return "<invalid url>"


@dataclass(frozen=True, slots=True)
class EndpointStats:
    """A snapshot of one endpoint's state (from `QAClient.stats`)."""

    url: str
    outstanding: int  # in flight plus waiting for a slot
    ejected: bool
    ok: int  # attempts answered 2xx
    failed: int  # attempts that failed
    consecutive_failures: int


class _Endpoint:
    __slots__ = (
        "chat_url",
        "consecutive_failures",
        "ejected_until",
        "failed",
        "label",
        "latency",
        "models_url",
        "ok",
        "outstanding",
        "probing",
        "slots",
        "status_counters",
    )

    def __init__(self, url: str, concurrency: int) -> None:
        self.label = _display(url)
        self.chat_url = f"{url}/v1/chat/completions"
        self.models_url = f"{url}/v1/models"
        self.slots = asyncio.Semaphore(concurrency)
        self.outstanding = 0
        self.ok = 0
        self.failed = 0
        self.consecutive_failures = 0
        self.ejected_until = 0.0  # time.monotonic(); 0.0 = in service
        self.probing = False
        self.latency = QA_LATENCY.labels(endpoint=self.label)
        self.status_counters: dict[str, Any] = {}

    def count(self, status: str) -> None:
        counter = self.status_counters.get(status)
        if counter is None:
            counter = self.status_counters[status] = QA_CALLS.labels(
                endpoint=self.label, status=status
            )
        counter.inc()


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


def _usable(ep: _Endpoint, now: float) -> bool:
    """In service, or ejected long enough ago to be probed and no probe in flight."""
    return not ep.ejected_until or (now >= ep.ejected_until and not ep.probing)


def _transport_failure(exc: httpx.TransportError | aiohttp.ClientError) -> str:
    """ "connect_error", "timeout" or "protocol_error", for httpx's errors and aiohttp's.

    httpx_aiohttp wraps some aiohttp errors in httpx types that do not fit (a refused
    connection or a dropped one becomes `httpx.ConnectTimeout`) and lets others through (a
    malformed response is `aiohttp.ClientResponseError`), so the aiohttp cause decides.
    """
    cause = exc.__cause__ if isinstance(exc.__cause__, aiohttp.ClientError) else exc
    if isinstance(cause, (httpx.ConnectError, aiohttp.ClientConnectorError)):
        return "connect_error"
    if isinstance(cause, (httpx.TimeoutException, aiohttp.ServerTimeoutError)):
        return "timeout"
    return "protocol_error"


def _retry_after(value: str | None) -> float | None:
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


class QAClient:
    """Asks questions about tables of one or more OpenAI-compatible servers; see the module doc."""

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
        max_tokens: int = 64,
        extra_body: dict[str, Any] | None = None,
        retry_after_max_s: float = 30.0,
        prime_prefix: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """`extra_body` is merged into every chat request (default: Qwen3 without thinking).

        `prime_prefix`: `answer_many` sends the first question alone and the rest once it is
        answered, so a server with a prefix cache computes the table's prefix once instead of
        once per concurrent question (worth it on vLLM; costs one extra round trip per table).
        `transport`: any httpx transport instead of the aiohttp-backed one (`aiohttp_transport`).
        """
        if max_concurrency_per_endpoint < 1:
            raise ValueError("max_concurrency_per_endpoint must be at least 1")
        if max_retries < 0 or eject_after_failures < 1:
            raise ValueError("max_retries must be >= 0 and eject_after_failures >= 1")
        self._endpoints = [
            _Endpoint(url, max_concurrency_per_endpoint) for url in parse_endpoints(endpoints)
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
        self._max_tokens = max_tokens
        self._extra_body = dict(DEFAULT_EXTRA_BODY if extra_body is None else extra_body)
        self._prime_prefix = prime_prefix
        self._next = 0  # rotates ties between equally loaded endpoints
        self._panicking = False  # every endpoint ejected: sending to them anyway
        self._headers = {"accept": "application/json", "accept-encoding": "identity"}
        if api_key:
            self._headers["authorization"] = f"Bearer {api_key}"
        self._given_transport = transport
        self._http = self._http_client()

    # public API ----------------------------------------------------------------------------
    async def answer(self, table: str, question: str, *, deadline: float | None = None) -> str:
        """The raw completion text for `question` about `table`; raises QAError."""
        if deadline is not None and time.monotonic() >= deadline:
            raise QAError("deadline passed before the call", kind="deadline")
        model = self._model or await self.model_name(deadline=deadline)
        body = {
            "model": model,
            "messages": build_messages(table, question),
            "temperature": 0,
            "max_tokens": self._max_tokens,
            **self._extra_body,
        }
        payload = await self._call("POST", json.dumps(body, ensure_ascii=False).encode(), deadline)
        try:
            content = payload["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise QAError("response has no choices[0].message", kind="bad_response") from None
        return content if isinstance(content, str) else ""

    async def answer_many(
        self, table: str, questions: Sequence[str], *, deadline: float | None = None
    ) -> list[str | QAError]:
        """Answers to every question about one table, in order; a failed one is its QAError."""

        async def one(question: str) -> str | QAError:
            try:
                return await self.answer(table, question, deadline=deadline)
            except QAError as exc:
                return exc

        if not questions:
            return []
        if self._prime_prefix and len(questions) > 1:
            first = await one(questions[0])
            rest = await asyncio.gather(*(one(q) for q in questions[1:]))
            return [first, *rest]
        return list(await asyncio.gather(*(one(q) for q in questions)))

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
                    raise QAError("/v1/models lists no model", kind="bad_response") from None
        return self._model

    def stats(self) -> list[EndpointStats]:
        """Per-endpoint outstanding, ejected, ok and failed counts."""
        now = time.monotonic()
        return [
            EndpointStats(
                url=ep.label,
                outstanding=ep.outstanding,
                ejected=ep.ejected_until > now or ep.probing,
                ok=ep.ok,
                failed=ep.failed,
                consecutive_failures=ep.consecutive_failures,
            )
            for ep in self._endpoints
        ]

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._bind_to_running_loop()
        await self._http.aclose()

    async def __aenter__(self) -> QAClient:
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

    def _pick(self, avoid: _Endpoint | None) -> _Endpoint:
        """The least loaded usable endpoint (ejected ones excluded, one probe when due); in panic
        mode, when none is usable, the least loaded ejected one, ejected longest ago first."""
        now = time.monotonic()
        best: _Endpoint | None = None
        count = len(self._endpoints)
        start = self._next
        self._next = (start + 1) % count
        for i in range(count):
            ep = self._endpoints[(start + i) % count]
            if not _usable(ep, now) or (ep is avoid and count > 1):
                continue
            if best is None or ep.outstanding < best.outstanding:
                best = ep
        if best is None and avoid is not None and _usable(avoid, now):
            best = avoid  # the only usable endpoint is the one that just failed
        if best is None:
            if not self._panicking:
                self._panicking = True
                _log.warning("every QA endpoint is ejected: sending to them anyway (panic mode)")
            others = [ep for ep in self._endpoints if ep is not avoid] or self._endpoints
            return min(others, key=lambda ep: (ep.outstanding, ep.ejected_until))
        if self._panicking:
            self._panicking = False
            _log.info("QA endpoint %s is usable again: panic mode over", best.label)
        if best.ejected_until:
            best.probing = True  # half-open: this attempt is the probe
        return best

    def _succeeded(self, ep: _Endpoint) -> None:
        ep.ok += 1
        ep.consecutive_failures = 0
        if ep.ejected_until:
            _log.info("QA endpoint %s answered again: back in service", ep.label)
        ep.ejected_until = 0.0
        ep.probing = False

    def _eject(self, ep: _Endpoint, failure: _AttemptFailed) -> None:
        if not ep.ejected_until or ep.probing:
            _log.warning(
                "QA endpoint %s ejected for %g s after %s", ep.label, self._eject_for, failure
            )
        ep.ejected_until = time.monotonic() + self._eject_for

    def _failed(self, ep: _Endpoint, failure: _AttemptFailed) -> None:
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
        """The JSON answer of a chat (POST) or models (GET) call, with retries; or QAError."""
        await self._bind_to_running_loop()
        avoid: _Endpoint | None = None
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
                raise QAError(
                    f"QA call to {where} failed ({failure}); the deadline leaves no time to retry",
                    endpoint=where,
                    status_code=failure.status_code,
                    kind="deadline",
                )
            _log.debug("QA call to %s failed (%s); retrying in %.3f s", where, failure, delay)
            await asyncio.sleep(delay)
        tries = attempt + 1
        raise QAError(
            f"QA call to {where} failed after {tries} attempt{'s' if tries > 1 else ''}: {failure}",
            endpoint=where,
            status_code=failure.status_code,
            kind=failure.kind,
        )

    async def _attempt(
        self, ep: _Endpoint, method: str, body: bytes | None, deadline: float | None
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
        self, ep: _Endpoint, chat: bool, body: bytes | None, deadline: float | None
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
                status = _transport_failure(exc)
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
                retry_after = _retry_after(response.headers.get("retry-after"))
                detail = response.text[:200].replace("\n", " ")
                raise _AttemptFailed(
                    f"HTTP {code}: {detail}" if detail else f"HTTP {code}",
                    kind="http",
                    retry=code == _RETRY_STATUS or code >= 500,
                    endpoint_fault=code >= 500,
                    status_code=code,
                    retry_after=retry_after,
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
