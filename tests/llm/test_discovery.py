"""Replicas behind one name: each address a name resolves to becomes an endpoint."""

from __future__ import annotations

import asyncio

from trivia.llm.discovery import replica_urls, resolve_replicas


def test_replica_urls_replace_the_host_by_each_address_keeping_port_and_path():
    urls = replica_urls("http://qa:8001", ["10.0.0.2", "10.0.0.1", "10.0.0.2"])
    assert urls == ["http://10.0.0.1:8001", "http://10.0.0.2:8001"]
    assert replica_urls("http://qa:8001/prefix", ["fd00::1"]) == ["http://[fd00::1]:8001/prefix"]


def test_a_name_resolves_to_every_address_and_literals_and_https_stay_as_they_are():
    urls = ["http://localhost:8001", "http://127.0.0.9:8001", "https://qa.example:443"]
    replicas = asyncio.run(resolve_replicas(urls))
    assert "http://127.0.0.1:8001" in replicas["http://localhost:8001"]
    assert all("localhost" not in u for u in replicas["http://localhost:8001"])
    assert replicas["http://127.0.0.9:8001"] == ["http://127.0.0.9:8001"]
    assert replicas["https://qa.example:443"] == ["https://qa.example:443"]


def test_a_name_that_stops_resolving_keeps_its_replicas():
    url = "http://qa.trivia.invalid:8001"
    kept = {url: ["http://10.0.0.1:8001", "http://10.0.0.2:8001"]}
    assert asyncio.run(resolve_replicas([url], kept)) == kept
    # Never resolved: the URL itself stands in, and fails as an endpoint would.
    assert asyncio.run(resolve_replicas([url])) == {url: [url]}
