"""HTTP plumbing of the chat clients: the transport, and reading failures and Retry-After.

httpx on aiohttp's connection pool (`httpx_aiohttp`), with keep-alive and one connection per
concurrent call. httpx's own pool (httpcore 1.0) rescans its connections for every queued request
and churns connections: 6.7-8.8 ms of CPU per call at 64 concurrent, against 0.36-0.48 ms on
aiohttp (a hand-written HTTP/1.1 transport took 0.30 ms, not worth a parser of our own;
`benchmarks/bench_qa_transport.py`). aiohttp's errors are classified here like httpx's.
"""

from __future__ import annotations

import functools
import ssl
import time
from email.utils import parsedate_to_datetime

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

__all__ = ["aiohttp_transport", "retry_after", "transport_failure"]

# Idle connections are dropped before the server's keep-alive timeout (uvicorn's and vLLM's 5 s),
# so a request is rarely sent on a connection the server is closing (aiohttp resends only
# idempotent requests, and chat calls are POSTs).
_KEEPALIVE_S = 4.0


def aiohttp_transport(max_connections: int) -> httpx.AsyncBaseTransport:
    """The clients' default transport: httpx over an aiohttp pool of `max_connections`.

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


def transport_failure(exc: httpx.TransportError | aiohttp.ClientError) -> str:
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
