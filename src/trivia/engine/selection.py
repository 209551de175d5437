"""`trivia data select`: which sampled images to keep, by their consistency (pure).

Two rules:
- paper: drop images below the floor (`low`, 0.4 in the paper: near-random outputs are noise)
  and spread the selection uniformly over [low, high] (high 1.0): the range is cut into `bins`
  equal-width bins and each gets an equal share of N; a bin with fewer images gives all it has
  and the remainder is shared among the others in turn, until N images are taken or none are
  left. Which bins get one more when N does not divide evenly is drawn with the seed.
- band: a plain uniform sample of N among the images within [low, high] (the authors' demo keeps
  0.5-0.9), which is the paper rule with a single bin.
Both are deterministic for a seed: records are ordered by key before sampling, and the selection
keeps the input's order. Bounds are inclusive; a value on an inner bin edge goes to the upper bin.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

Strategy = Literal["paper", "band"]
#: Each rule's (low, high) when not given.
DEFAULT_BOUNDS: dict[str, tuple[float, float]] = {"paper": (0.4, 1.0), "band": (0.5, 0.9)}
_EDGE = 1e-9  # values within this of a bin edge count as on it (0.1 * 6 / 0.6 is not 1.0)


@dataclass(frozen=True, slots=True)
class Selection:
    """The records kept, and the counts that explain them."""

    records: list[dict[str, Any]]
    total: int  # records given
    below: int  # consistency under `low`
    above: int  # consistency over `high`
    in_range: int
    available: tuple[int, ...]  # per bin (one bin for `band`)
    taken: tuple[int, ...]


def bin_index(value: float, low: float, high: float, bins: int) -> int:
    """Which of `bins` equal-width bins over [low, high] holds `value` (inside the range)."""
    if high <= low:
        return 0
    position = (value - low) / (high - low) * bins
    return min(bins - 1, max(0, math.floor(position + _EDGE)))


def histogram(
    values: Sequence[float], *, low: float = 0.0, high: float = 1.0, bins: int = 10
) -> list[int]:
    """Counts of `values` in `bins` equal-width bins over [low, high]; others are left out."""
    counts = [0] * bins
    for value in values:
        if low - _EDGE <= value <= high + _EDGE:
            counts[bin_index(value, low, high, bins)] += 1
    return counts


def _check(low: float, high: float, n: int) -> None:
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"need 0 <= low <= high <= 1, got low={low}, high={high}")
    if n < 0:
        raise ValueError("n must not be negative")


def _split(records: Sequence[dict[str, Any]], low: float, high: float):
    below = above = 0
    inside: list[tuple[int, dict[str, Any]]] = []
    for index, record in enumerate(records):
        value = float(record["consistency"])
        if value < low - _EDGE:
            below += 1
        elif value > high + _EDGE:
            above += 1
        else:
            inside.append((index, record))
    inside.sort(key=lambda item: (str(item[1].get("key", "")), item[0]))
    return below, above, inside


def _allocate(capacity: list[int], n: int, rng: random.Random) -> list[int]:
    """Equal shares of `n` over the bins, a short bin's remainder shared among the rest."""
    taken = [0] * len(capacity)
    remaining = min(n, sum(capacity))
    open_bins = [i for i, c in enumerate(capacity) if c > 0]
    while remaining > 0 and open_bins:
        share, extra = divmod(remaining, len(open_bins))
        lucky = set(rng.sample(open_bins, extra))
        for i in open_bins:
            give = min(capacity[i] - taken[i], share + (i in lucky))
            taken[i] += give
            remaining -= give
        open_bins = [i for i in open_bins if taken[i] < capacity[i]]
    return taken


@dataclass(frozen=True, slots=True)
class SelectionRule:
    """A rule with its settings; unset bounds are the rule's own (`DEFAULT_BOUNDS`).

    `band` is the paper's rule with one bin: a uniform sample of N within [low, high].
    """

    strategy: Strategy
    n: int
    low: float | None = None
    high: float | None = None
    bins: int = 6  # the paper rule's
    seed: int = 0

    def __post_init__(self) -> None:
        if self.strategy not in DEFAULT_BOUNDS:
            raise ValueError(f"unknown strategy {self.strategy!r}; use 'paper' or 'band'")
        _check(*self.bounds, self.n)
        if self.strategy == "paper" and self.bins < 1:
            raise ValueError("bins must be at least 1")

    @property
    def bounds(self) -> tuple[float, float]:
        """(low, high) as given, else the rule's defaults."""
        low, high = DEFAULT_BOUNDS[self.strategy]
        return (low if self.low is None else self.low, high if self.high is None else self.high)

    def apply(self, records: Sequence[dict[str, Any]]) -> Selection:
        """The records kept, in the input's order."""
        low, high = self.bounds
        bins = self.bins if self.strategy == "paper" else 1
        rng = random.Random(self.seed)
        below, above, inside = _split(records, low, high)
        members: list[list[tuple[int, dict[str, Any]]]] = [[] for _ in range(bins)]
        for item in inside:
            members[bin_index(float(item[1]["consistency"]), low, high, bins)].append(item)
        taken = _allocate([len(m) for m in members], self.n, rng)
        chosen = [item for m, t in zip(members, taken, strict=True) for item in rng.sample(m, t)]
        return Selection(
            records=[record for _, record in sorted(chosen, key=lambda item: item[0])],
            total=len(records),
            below=below,
            above=above,
            in_range=len(inside),
            available=tuple(len(m) for m in members),
            taken=tuple(taken),
        )
