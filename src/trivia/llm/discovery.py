"""Replicas behind one name: every address a host name resolves to, as an endpoint of its own.

A Kubernetes headless Service (`clusterIP: None`) answers a DNS query with one record per ready
pod, and compose's DNS with one per container of a service (`--scale qa=N`). Resolving the name
of each configured URL and using every address as its own endpoint lets the client see each
replica (for table affinity, `trivia.llm.affinity`) instead of one virtual address that spreads
connections blindly. A ClusterIP Service, a single host or an IP literal gives one endpoint, as
before. The client resolves again every `TRIVIA_QA_RESOLVE_S` seconds, so that replicas that come
and go are added and dropped.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Mapping, Sequence

import httpx


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def replica_urls(url: str, addresses: Sequence[str]) -> list[str]:
    """`url` once per address, the host name replaced by the address (sorted, no duplicates)."""
    parsed = httpx.URL(url)
    out = []
    for address in sorted(set(addresses)):
        out.append(str(parsed.copy_with(host=address)).rstrip("/"))
    return out


async def _addresses(host: str, port: int) -> list[str]:
    """The host's addresses; IPv4 only when it has some (a dual-stack pod has one of each)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    v4 = [str(info[4][0]) for info in infos if info[0] == socket.AF_INET]
    return v4 or [str(info[4][0]) for info in infos]


async def resolve_replicas(
    urls: Sequence[str], previous: Mapping[str, Sequence[str]] | None = None
) -> dict[str, list[str]]:
    """Each of `urls` (base URLs, as `parse_endpoints` gives them) with its replica URLs.

    A URL whose host is an address, or that uses https (a certificate names the host, not the
    address), is its own only replica. A name that does not resolve keeps the replicas it had
    in `previous`, so that a DNS blip does not empty the client; with none, the URL itself
    stands in and fails as an endpoint would.
    """
    previous = previous or {}
    replicas: dict[str, list[str]] = {}
    for url in urls:
        parsed = httpx.URL(url)
        if parsed.scheme != "http" or _is_literal(parsed.host):
            replicas[url] = [url]
            continue
        try:
            addresses = await _addresses(parsed.host, parsed.port or 80)
        except OSError:
            replicas[url] = list(previous.get(url) or [url])
            continue
        replicas[url] = replica_urls(url, addresses) or [url]
    return replicas
