"""Choosing among endpoints: least outstanding, ejection, probes, panic mode (no network)."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from trivia.llm.endpoints import EndpointPool, display_url, parse_endpoints
from trivia.llm.metrics import CallMetrics


def _metrics() -> CallMetrics:
    from prometheus_client import Counter, Histogram

    registry = CollectorRegistry()
    return CallMetrics(
        Counter("t_calls", "t", ["endpoint", "status"], registry=registry),
        Histogram("t_latency_seconds", "t", ["endpoint"], registry=registry),
    )


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def pool(n: int = 3, *, eject_after: int = 2, clock: Clock | None = None) -> EndpointPool:
    return EndpointPool(
        [f"http://h{i}:80" for i in range(n)],
        concurrency=4,
        eject_after_failures=eject_after,
        eject_for_s=10.0,
        metrics=_metrics(),
        name="T",
        clock=clock or Clock(),
    )


def test_the_least_outstanding_endpoint_is_picked_ties_rotating():
    p = pool()
    a, b, c = p.endpoints
    assert [p.pick().url for _ in range(3)] == [a.url, b.url, c.url]  # ties rotate
    a.outstanding, b.outstanding, c.outstanding = 3, 1, 2
    assert p.pick() is b
    assert p.pick("table-1") is b  # a routing key is accepted; the load still decides


def test_a_retry_avoids_the_endpoint_that_just_failed_unless_it_is_the_only_one():
    p = pool(2)
    first, second = p.endpoints
    assert p.pick(avoid=first) is second
    alone = pool(1)
    assert alone.pick(avoid=alone.endpoints[0]) is alone.endpoints[0]


def test_faults_in_a_row_eject_then_one_probe_readmits_or_re_ejects():
    clock = Clock()
    p = pool(2, clock=clock)
    bad, good = p.endpoints
    p.failed(bad, endpoint_fault=True, reason="503")
    p.succeeded(bad)  # a success resets the run
    p.failed(bad, endpoint_fault=True, reason="503")
    assert not p.stats()[0].ejected
    p.failed(bad, endpoint_fault=True, reason="503")
    assert p.stats()[0].ejected
    assert {p.pick().url for _ in range(4)} == {good.url}
    clock.now += 10.0
    assert p.pick(avoid=good) is bad and bad.probing  # half-open: this attempt probes
    assert p.pick(avoid=good) is good  # one probe at a time
    p.failed(bad, endpoint_fault=True, reason="503")  # the probe failed: out again
    assert p.stats()[0].ejected and not bad.probing
    clock.now += 10.0
    assert p.pick(avoid=good) is bad
    p.succeeded(bad)
    assert p.stats()[0] == p.stats()[0].__class__(
        url="http://h0", outstanding=0, ejected=False, ok=2, failed=4, consecutive_failures=0
    )


def test_a_probe_answered_429_or_4xx_found_the_server_alive():
    clock = Clock()
    p = pool(1, eject_after=1, clock=clock)
    (ep,) = p.endpoints
    p.failed(ep, endpoint_fault=True, reason="timeout")
    clock.now += 10.0
    assert p.pick() is ep and ep.probing
    p.failed(ep, endpoint_fault=False, reason="429")
    assert not p.stats()[0].ejected


def test_panic_mode_sends_to_the_endpoint_ejected_longest_ago():
    clock = Clock()
    p = pool(2, eject_after=1, clock=clock)
    first, second = p.endpoints
    p.failed(second, endpoint_fault=True, reason="503")
    clock.now += 1.0
    p.failed(first, endpoint_fault=True, reason="503")
    assert [s.ejected for s in p.stats()] == [True, True]
    assert p.pick() is second  # every endpoint out: the one out longest is tried
    p.succeeded(second)
    assert p.pick() is second and [s.ejected for s in p.stats()] == [True, False]


def test_endpoint_urls_are_normalised_and_credentials_never_shown():
    assert parse_endpoints("h:8000/v1/, http://b:1") == ["http://h:8000", "http://b:1"]
    assert display_url("http://user:pw@h:1/v1") == "http://h:1/v1"
    with pytest.raises(ValueError):
        parse_endpoints(" , ")
    with pytest.raises(ValueError):
        parse_endpoints("ftp://h")
    with pytest.raises(ValueError):
        pool(1, eject_after=0)
