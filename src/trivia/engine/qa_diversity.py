"""A diverse subset of verified questions: every region of the table asked about.

Generators ask about the first rows and the obvious column first. The paper keeps about 30
questions per image whose answers lie in different parts of the table; `select_diverse` does
that greedily: each pick is the candidate whose answer cell covers the most rows and columns
not covered yet, ties going to the cell whose rows and columns have been asked about least
often, then to a cell not asked about yet, then to the earlier candidate. Once every row and
column is covered, the least-asked regions keep getting preference, so questions stay spread.
Answers without a location (not found in the consensus recognition) share one pseudo-region of
their own, a row and a column apart: the first such answer covers something new, later ones
reuse it. Pure: no I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from trivia.engine.qa_candidate import Location

_UNLOCATED = -1


def _regions(location: Location | None) -> tuple[tuple[int, ...], tuple[int, ...]]:
    if location is None:
        return (_UNLOCATED,), (_UNLOCATED,)
    return tuple(location.rows), tuple(location.cols)


def select_diverse(locations: Sequence[Location | None], limit: int) -> list[int]:
    """Indices of at most `limit` candidates, in the order picked (see the module docstring)."""
    row_uses: Counter[int] = Counter()
    col_uses: Counter[int] = Counter()
    cell_uses: Counter[Location | None] = Counter()
    left = list(range(len(locations)))
    picked: list[int] = []

    def gain(i: int) -> tuple[int, int, int, int]:
        rows, cols = _regions(locations[i])
        new = sum(row_uses[r] == 0 for r in rows) + sum(col_uses[c] == 0 for c in cols)
        used = min(row_uses[r] for r in rows) + min(col_uses[c] for c in cols)
        return (new, -used, -cell_uses[locations[i]], -i)

    while left and len(picked) < limit:
        best = max(left, key=gain)
        left.remove(best)
        picked.append(best)
        rows, cols = _regions(locations[best])
        row_uses.update(rows)
        col_uses.update(cols)
        cell_uses[locations[best]] += 1
    return picked


@dataclass(frozen=True, slots=True)
class Coverage:
    """How much of a table the located answers reach: distinct rows and columns, and shares."""

    rows: int
    cols: int
    row_share: float
    col_share: float


def coverage(locations: Sequence[Location | None], n_rows: int, n_cols: int) -> Coverage:
    """Distinct rows and columns of an `n_rows` x `n_cols` table that the answers lie in."""
    rows = {r for loc in locations if loc is not None for r in loc.rows if r < n_rows}
    cols = {c for loc in locations if loc is not None for c in loc.cols if c < n_cols}
    return Coverage(
        len(rows),
        len(cols),
        len(rows) / n_rows if n_rows else 0.0,
        len(cols) / n_cols if n_cols else 0.0,
    )
