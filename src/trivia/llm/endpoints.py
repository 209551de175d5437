"""Endpoints of a chat client: parsing the URLs given, and the per-endpoint state it balances on."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from trivia.llm.metrics import CallMetrics

__all__ = ["Endpoint", "EndpointStats", "display_url", "parse_endpoints"]


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
                raise ValueError(f"not an http(s) endpoint: {display_url(url)}")
            urls.append(url)
    if not urls:
        raise ValueError("no endpoint given")
    return urls


def display_url(url: str) -> str:
    """The URL without any user:password part, for logs, errors and metric labels."""
    try:
        return str(httpx.URL(url).copy_with(username=None, password=None))
    except (httpx.InvalidURL, TypeError):
        return "<invalid url>"


@dataclass(frozen=True, slots=True)
class EndpointStats:
    """A snapshot of one endpoint's state (from `ChatClient.stats`)."""

    url: str
    outstanding: int  # in flight plus waiting for a slot
    ejected: bool
    ok: int  # attempts answered 2xx
    failed: int  # attempts that failed
    consecutive_failures: int


class Endpoint:
    """The mutable state of one endpoint, owned by one client (not part of the public API)."""

    __slots__ = (
        "chat_url",
        "consecutive_failures",
        "ejected_until",
        "failed",
        "label",
        "latency",
        "metrics",
        "models_url",
        "ok",
        "outstanding",
        "probing",
        "slots",
        "status_counters",
    )

    def __init__(self, url: str, concurrency: int, metrics: CallMetrics) -> None:
        self.label = display_url(url)
        self.chat_url = f"{url}/v1/chat/completions"
        self.models_url = f"{url}/v1/models"
        self.slots = asyncio.Semaphore(concurrency)
        self.outstanding = 0
        self.ok = 0
        self.failed = 0
        self.consecutive_failures = 0
        self.ejected_until = 0.0  # time.monotonic(); 0.0 = in service
        self.probing = False
        self.metrics = metrics
        self.latency = metrics.latency.labels(endpoint=self.label)
        self.status_counters: dict[str, Any] = {}

    def count(self, status: str) -> None:
        """Count one attempt under its status (children are cached: this runs per call)."""
        counter = self.status_counters.get(status)
        if counter is None:
            counter = self.status_counters[status] = self.metrics.calls.labels(
                endpoint=self.label, status=status
            )
        counter.inc()

    def usable(self, now: float) -> bool:
        """In service, or ejected long enough ago to be probed and no probe in flight."""
        return not self.ejected_until or (now >= self.ejected_until and not self.probing)

    def snapshot(self, now: float) -> EndpointStats:
        return EndpointStats(
            url=self.label,
            outstanding=self.outstanding,
            ejected=self.ejected_until > now or self.probing,
            ok=self.ok,
            failed=self.failed,
            consecutive_failures=self.consecutive_failures,
        )
