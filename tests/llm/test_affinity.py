"""Table affinity: rendezvous hashing keeps each table on one replica and moves only a share."""

from __future__ import annotations

from collections import Counter

import pytest

from trivia.llm.affinity import affinity_key, owner, route

NAMES = [f"http://10.0.0.{i}:8001" for i in range(1, 5)]
KEYS = [affinity_key(f"<table><tr><td>{i}</td></tr></table>") for i in range(4000)]


def _owners(names: list[str]) -> list[str]:
    return [names[owner(key, names)] for key in KEYS]


def test_the_owner_depends_on_the_key_and_the_set_of_endpoints_not_their_order():
    assert _owners(NAMES) == _owners(list(reversed(NAMES)))
    assert affinity_key("a table") == affinity_key("a table") != affinity_key("another")


def test_keys_spread_evenly_over_the_endpoints():
    counts = Counter(_owners(NAMES))
    assert set(counts) == set(NAMES)
    assert max(counts.values()) / min(counts.values()) < 1.15


def test_taking_an_endpoint_out_moves_only_the_keys_it_owned():
    before = _owners(NAMES)
    gone = NAMES[2]
    after = _owners([n for n in NAMES if n != gone])
    moved = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert moved == [i for i, a in enumerate(before) if a == gone]
    # ...and spreads them over the others, not onto one.
    assert len(Counter(after[i] for i in moved)) == len(NAMES) - 1


def test_adding_an_endpoint_takes_only_the_keys_it_now_owns():
    before = _owners(NAMES)
    added = "http://10.0.0.9:8001"
    after = _owners([*NAMES, added])
    moved = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert moved and all(after[i] == added for i in moved)
    assert 0.15 < len(moved) / len(KEYS) < 0.25  # about 1/5


def _endpoints(loads: dict[str, int], full: set[str] = frozenset()):
    return dict(name=lambda n: n, load=lambda n: loads[n], saturated=lambda n: n in full)


def test_route_sends_a_key_to_its_owner_unless_the_owner_is_saturated():
    loads = dict.fromkeys(NAMES, 1) | {NAMES[3]: 0}
    key = KEYS[0]
    home = NAMES[owner(key, NAMES)]
    assert route(key, NAMES, **_endpoints(loads)) == home
    # Saturated owner: the least-loaded endpoint instead.
    loads[home] = 64
    fallback = min((n for n in NAMES), key=lambda n: loads[n])
    assert route(key, NAMES, **_endpoints(loads, {home})) == fallback
    # No key: least-loaded.
    assert route(None, NAMES, **_endpoints(loads)) == fallback


def test_route_without_endpoints_is_an_error():
    with pytest.raises(ValueError):
        route(KEYS[0], [], **_endpoints({}))
