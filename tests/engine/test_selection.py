"""Selection by consistency: counts per rule, determinism per seed, edges."""

from __future__ import annotations

import random

import pytest

from trivia.engine.selection import SelectionRule, bin_index, histogram


def _records(values: list[float]) -> list[dict]:
    return [{"key": f"k{i:04d}", "consistency": v} for i, v in enumerate(values)]


def _spread(per_bin: list[int], low: float = 0.4, width: float = 0.1) -> list[float]:
    """`per_bin[i]` values inside bin i of [low, low + width * len(per_bin)]."""
    return [
        low + width * (i + (j + 0.5) / (n + 1)) for i, n in enumerate(per_bin) for j in range(n)
    ]


def test_paper_takes_equal_shares_from_each_bin_and_drops_below_the_floor():
    values = [*_spread([5, 5, 5, 5, 5, 5]), 0.05, 0.2, 0.39]
    selection = SelectionRule("paper", n=12, seed=1).apply(_records(values))
    assert selection.available == (5, 5, 5, 5, 5, 5)
    assert selection.taken == (2, 2, 2, 2, 2, 2)
    assert selection.below == 3 and selection.in_range == 30 and selection.total == 33
    assert len(selection.records) == 12
    assert all(r["consistency"] >= 0.4 for r in selection.records)
    counts = histogram([r["consistency"] for r in selection.records], low=0.4, high=1.0, bins=6)
    assert counts == [2] * 6


def test_a_short_bin_gives_what_it_has_and_the_rest_is_shared():
    selection = SelectionRule("paper", n=12, seed=3).apply(_records(_spread([0, 1, 5, 5, 5, 5])))
    assert selection.taken[0] == 0 and selection.taken[1] == 1
    assert sum(selection.taken) == 12
    assert sorted(selection.taken[2:]) == [2, 3, 3, 3]
    # Asking for more than there is takes everything in range.
    everything = SelectionRule("paper", n=100).apply(_records(_spread([0, 1, 5, 5, 5, 5])))
    assert everything.taken == everything.available == (0, 1, 5, 5, 5, 5)


def test_edges_are_inclusive_and_an_inner_edge_goes_up():
    assert bin_index(0.4, 0.4, 1.0, 6) == 0
    assert bin_index(0.5, 0.4, 1.0, 6) == 1  # (0.5 - 0.4) / 0.6 * 6 is 0.9999… in floats
    assert bin_index(1.0, 0.4, 1.0, 6) == 5
    selection = SelectionRule("paper", n=10).apply(_records([0.4, 0.5, 1.0, 0.3999]))
    assert selection.available == (1, 1, 0, 0, 0, 1) and selection.below == 1


def test_band_samples_uniformly_within_the_bounds():
    values = [i / 100 for i in range(101)]
    selection = SelectionRule("band", n=10, low=0.5, high=0.9, seed=7).apply(_records(values))
    assert selection.in_range == 41 and selection.below == 50 and selection.above == 10
    assert len(selection.records) == 10
    assert all(0.5 <= r["consistency"] <= 0.9 for r in selection.records)
    assert SelectionRule("band", n=1000, low=0.5, high=0.9).apply(_records(values)).taken == (41,)
    assert SelectionRule("band", n=0).apply(_records(values)).records == []


def test_selection_is_deterministic_per_seed_and_independent_of_input_order():
    records = _records([random.Random(0).random() for _ in range(300)])
    for strategy in ("paper", "band"):
        first = SelectionRule(strategy, n=40, seed=11).apply(records)
        again = SelectionRule(strategy, n=40, seed=11).apply(list(reversed(records)))
        other = SelectionRule(strategy, n=40, seed=12).apply(records)
        keys = {r["key"] for r in first.records}
        assert keys == {r["key"] for r in again.records}
        assert keys != {r["key"] for r in other.records}
        assert [r["key"] for r in first.records] == sorted(keys)  # input order kept


def test_default_bounds_per_strategy_and_bad_arguments():
    records = _records([0.45, 0.55, 0.95])
    assert SelectionRule("paper", n=3).apply(records).in_range == 3  # 0.4-1.0
    assert SelectionRule("band", n=3).apply(records).in_range == 1  # 0.5-0.9
    with pytest.raises(ValueError):
        SelectionRule("paper", n=3, low=0.9, high=0.5).apply(records)
    with pytest.raises(ValueError):
        SelectionRule("random", n=3).apply(records)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        SelectionRule("band", n=-1).apply(records)
    assert SelectionRule("paper", n=5).apply([]).records == []


def test_histogram_counts_values_in_range():
    assert histogram([0.0, 0.05, 0.1, 0.99, 1.0, 1.5], bins=10) == [2, 1, 0, 0, 0, 0, 0, 0, 0, 2]
