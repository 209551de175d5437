"""Choosing among endpoints: what the OpenAI SDK lacks (it talks to one base URL).

`EndpointPool.pick` gives each attempt the usable endpoint with the fewest outstanding requests
(in flight plus waiting for one of its `concurrency` slots), ties rotating; `avoid` steers a
retry to another endpoint. Outcomes feed back through `succeeded` and `failed`:

- Ejection: `eject_after_failures` endpoint faults in a row (connection errors, timeouts, 5xx;
  not 429 or other 4xx) take an endpoint out for `eject_for_s`; after that one attempt probes it
  (half-open): success brings it back, failure ejects it again.
- Panic mode: while every endpoint is ejected (as Envoy's panic threshold), attempts go to the
  ejected ones anyway, least outstanding first and then the one ejected longest ago, so a lone
  endpoint that blips is not out of use for `eject_for_s`; any success brings it back at once.

- Affinity: `pick(key)` with a routing key (a table's digest) gives the key's owner among the
  usable endpoints by rendezvous hashing, so a server's prefix cache holds each table once and an
  ejected or added endpoint moves only its share; when the owner's slots are all taken, the
  least-loaded endpoint instead (`trivia.llm.affinity`).
- Replicas that come and go: `set_urls` replaces the endpoint list, keeping the state of those
  that stay (`trivia.llm.discovery` finds them).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from trivia.llm.affinity import route
from trivia.llm.metrics import CallMetrics

_log = logging.getLogger(__name__)


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
    """The mutable state of one endpoint, owned by one pool."""

    __slots__ = (
        "consecutive_failures",
        "ejected_until",
        "failed",
        "label",
        "latency",
        "metrics",
        "ok",
        "outstanding",
        "probing",
        "slots",
        "status_counters",
        "url",
    )

    def __init__(self, url: str, concurrency: int, metrics: CallMetrics) -> None:
        self.url = url
        self.label = display_url(url)
        self.slots = asyncio.Semaphore(concurrency)
        self.outstanding = 0
        self.ok = 0
        self.failed = 0
        self.consecutive_failures = 0
        self.ejected_until = 0.0  # clock time; 0.0 = in service
        self.probing = False
        self.metrics = metrics
        self.latency = metrics.latency.labels(endpoint=self.label)
        self.status_counters: dict[str, Any] = {}

    def count(self, status: str, seconds: float) -> None:
        """Count one chat attempt under its status (children cached: this runs per call)."""
        counter = self.status_counters.get(status)
        if counter is None:
            counter = self.status_counters[status] = self.metrics.calls.labels(
                endpoint=self.label, status=status
            )
        counter.inc()
        self.latency.observe(seconds)

    def usable(self, now: float) -> bool:
        """In service, or ejected long enough ago to be probed and no probe in flight."""
        return not self.ejected_until or (now >= self.ejected_until and not self.probing)


class EndpointPool:
    """The endpoints of one client and the choice among them; see the module docstring."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        concurrency: int,
        eject_after_failures: int,
        eject_for_s: float,
        metrics: CallMetrics,
        name: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if concurrency < 1 or eject_after_failures < 1:
            raise ValueError("concurrency and eject_after_failures must be at least 1")
        self.endpoints = [Endpoint(url, concurrency, metrics) for url in urls]
        self._metrics = metrics
        self._concurrency = concurrency
        self._eject_after = eject_after_failures
        self._eject_for = eject_for_s
        self._name = name
        self._clock = clock
        self._next = 0  # rotates ties between equally loaded endpoints
        self._panicking = False

    def pick(self, key: str | None = None, *, avoid: Endpoint | None = None) -> Endpoint:
        """The endpoint for the next attempt; `key` routes by affinity (module docstring)."""
        now = self._clock()
        best: Endpoint | None = None
        count = len(self.endpoints)
        start = self._next
        self._next = (start + 1) % count
        if key is not None:
            usable = [
                ep for ep in self.endpoints if ep.usable(now) and not (ep is avoid and count > 1)
            ]
            if usable:
                best = route(
                    key,
                    usable,
                    name=lambda ep: ep.url,
                    load=lambda ep: ep.outstanding,
                    saturated=lambda ep: ep.outstanding >= self._concurrency,
                )
        for i in range(count if best is None else 0):
            ep = self.endpoints[(start + i) % count]
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
            others = [ep for ep in self.endpoints if ep is not avoid] or self.endpoints
            return min(others, key=lambda ep: (ep.outstanding, ep.ejected_until))
        if self._panicking:
            self._panicking = False
            _log.info("%s endpoint %s is usable again: panic mode over", self._name, best.label)
        if best.ejected_until:
            best.probing = True  # half-open: this attempt is the probe
        return best

    def succeeded(self, ep: Endpoint) -> None:
        ep.ok += 1
        ep.consecutive_failures = 0
        if ep.ejected_until:
            _log.info("%s endpoint %s answered again: back in service", self._name, ep.label)
        ep.ejected_until = 0.0
        ep.probing = False

    def failed(self, ep: Endpoint, *, endpoint_fault: bool, reason: object) -> None:
        """An attempt failed; `endpoint_fault`: the endpoint's doing (not a 4xx or 429)."""
        ep.failed += 1
        if ep.probing:
            # A probe that got a 4xx or 429 found the server alive; anything else re-ejects.
            if endpoint_fault:
                self._eject(ep, reason)
            else:
                ep.ejected_until = 0.0
            ep.probing = False
            return
        if endpoint_fault:
            ep.consecutive_failures += 1
            if ep.consecutive_failures >= self._eject_after:
                self._eject(ep, reason)

    def _eject(self, ep: Endpoint, reason: object) -> None:
        if not ep.ejected_until or ep.probing:
            _log.warning(
                "%s endpoint %s ejected for %g s after %s",
                self._name,
                ep.label,
                self._eject_for,
                reason,
            )
        ep.ejected_until = self._clock() + self._eject_for

    def set_urls(self, urls: Sequence[str]) -> list[Endpoint]:
        """Serve `urls` from now on: endpoints that stay keep their state; the new ones return.

        Attempts in flight on a dropped endpoint finish there.
        """
        if not urls:
            raise ValueError("no endpoint given")
        kept = {ep.url: ep for ep in self.endpoints}
        added = [Endpoint(url, self._concurrency, self._metrics) for url in urls if url not in kept]
        fresh = {ep.url: ep for ep in added}
        gone = set(kept) - set(urls)
        if added or gone:
            _log.info(
                "%s endpoints: %d (added %s, dropped %s)",
                self._name,
                len(urls),
                ", ".join(ep.label for ep in added) or "none",
                ", ".join(kept[url].label for url in sorted(gone)) or "none",
            )
        self.endpoints = [kept.get(url) or fresh[url] for url in dict.fromkeys(urls)]
        self._next %= len(self.endpoints)
        return added

    def new_loop(self) -> None:
        """Fresh slots for a new event loop (semaphores belong to the loop that used them)."""
        for ep in self.endpoints:
            ep.slots = asyncio.Semaphore(self._concurrency)
            ep.outstanding = 0
            ep.probing = False

    def stats(self) -> list[EndpointStats]:
        now = self._clock()
        return [
            EndpointStats(
                url=ep.label,
                outstanding=ep.outstanding,
                ejected=ep.ejected_until > now or ep.probing,
                ok=ep.ok,
                failed=ep.failed,
                consecutive_failures=ep.consecutive_failures,
            )
            for ep in self.endpoints
        ]
