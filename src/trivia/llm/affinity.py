"""Table affinity: the questions about one table go to the replica that holds it in its cache.

vLLM's prefix cache saves the prefill of a prompt prefix it has seen, and the questions about one
table share the table as their prefix. Spread blindly over N replicas, only about 1/N of them
meet their table's cache. So each request may carry a key (a digest of the table text), and
the key's owner among the healthy endpoints is chosen by rendezvous hashing (highest random
weight): every endpoint scores the key, the highest score owns it. Taking an endpoint out moves
only the keys it owned, each to its next-highest scorer, and adding one takes only the keys it
now scores highest; every other table stays where its cache is. When the owner is saturated
(every slot this client may use on it is busy), the request goes to the least-loaded endpoint
instead, so that hot tables cannot queue behind each other while other replicas idle. The
owners' shares are as even as hashing makes them: with a few hundred tables, each replica's
share is within about 10 % of the mean, and some hash draws give more.

Pure: no I/O, no clock. The client (`trivia.llm.client`) supplies endpoints, loads and names.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import TypeVar

E = TypeVar("E")


def affinity_key(text: str) -> str:
    """The routing key of requests that share `text` as their prompt prefix (the table)."""
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _score(key: str, name: str) -> bytes:
    return hashlib.blake2b(f"{name}\0{key}".encode(), digest_size=8).digest()


def owner(key: str, names: Sequence[str]) -> int:
    """The index of the name that owns `key`: the highest rendezvous score."""
    if not names:
        raise ValueError("no endpoint to own the key")
    return max(range(len(names)), key=lambda i: _score(key, names[i]))


def route(
    key: str | None,
    endpoints: Sequence[E],
    *,
    name: Callable[[E], str],
    load: Callable[[E], int],
    saturated: Callable[[E], bool],
) -> E:
    """The owner of `key` among `endpoints`, or the least-loaded one.

    Least-loaded when there is no key or the owner is `saturated`. `name` must be stable for an
    endpoint (its address): the same names give every client the same owners.
    """
    if not endpoints:
        raise ValueError("no endpoint to route to")
    if key is not None:
        chosen = endpoints[owner(key, [name(e) for e in endpoints])]
        if not saturated(chosen):
            return chosen
    return min(endpoints, key=load)
