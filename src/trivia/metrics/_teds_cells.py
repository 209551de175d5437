"""Cell rename costs in bulk: every cell-to-cell Levenshtein distance in one rapidfuzz call.

The reference computes `distance.levenshtein(tokens1, tokens2) / max(len1, len2)` for each pair
of cells it compares. Here each cell's tokens become one string (characters stay themselves,
each inline-tag marker becomes one code point that no content uses), identical contents are
computed once, `rapidfuzz.process.cdist` returns the exact integer distances of all pairs of
distinct contents, and numpy divides each by the longer length in float64 — the same correctly
rounded division the reference does, so every cost is bit for bit the reference's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from trivia.metrics._teds_tree import Marker, TableTree

NOT_A_CELL = -1
_ROWS_PER_BLOCK = 256
# Where marker code points come from, in order: the private-use areas first, then anything else.
_MARKER_SPACE = (
    range(0xE000, 0xF900),
    range(0xF0000, 0x110000),
    range(0x100, 0xD800),
    range(0xF900, 0xF0000),
)


def pair_costs(first: TableTree, second: TableTree) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per node of each tree, the row (first) or column (second) of its content in the matrix of
    rename costs between the two trees' distinct cell contents (-1 for other nodes); and that
    matrix."""
    first_cells, second_cells = _encode([first, second])
    first_ids, rows = _index([first_cells])
    second_ids, columns = _index([second_cells])
    return first_ids[0], second_ids[0], _costs(rows, columns)


def shared_costs(trees: Sequence[TableTree]) -> tuple[list[np.ndarray], np.ndarray]:
    """Per tree, its nodes' indices into one set of distinct contents over all `trees`, and the
    rename costs between all of them: one bulk call for every pair of trees."""
    ids, distinct = _index(_encode(trees))
    return ids, _costs(distinct, distinct)


def share_pays(trees: Sequence[TableTree]) -> bool:
    """Whether one matrix over all distinct contents is no more work than one matrix per pair of
    trees, and at most four times the memory of the largest per-pair matrix."""
    per_tree = [{cell for cell in tree.cells if cell is not None} for tree in trees]
    counts = [len(cells) for cells in per_tree]
    total = len(set().union(*per_tree))
    per_pair = sum(counts[a] * counts[b] for a in range(len(counts)) for b in range(a))
    return total * total <= min(per_pair, 4 * max(counts, default=0) ** 2)


def _encode(trees: Sequence[TableTree]) -> list[list[str | None]]:
    """Each cell's content as one string, one code point per marker, consistently over `trees`."""
    markers = sorted(frozenset().union(*(tree.markers for tree in trees)))
    codes: dict[Marker, str] = {}
    if markers:
        taken = frozenset().union(*(tree.alphabet for tree in trees))
        free = (c for space in _MARKER_SPACE for c in map(chr, space) if c not in taken)
        codes = dict(zip(markers, free, strict=False))
    return [
        [
            cell
            if cell is None or type(cell) is str
            else "".join(codes[piece] if type(piece) is Marker else piece for piece in cell)
            for cell in tree.cells
        ]
        for tree in trees
    ]


def _index(trees: list[list[str | None]]) -> tuple[list[np.ndarray], list[str]]:
    """Per tree, each node's index among the distinct contents of all `trees`; those contents."""
    distinct: dict[str, int] = {}
    ids = [
        np.asarray(
            [NOT_A_CELL if c is None else distinct.setdefault(c, len(distinct)) for c in cells],
            dtype=np.int64,
        )
        for cells in trees
    ]
    return ids, list(distinct)


def _costs(rows: list[str], columns: list[str]) -> np.ndarray:
    """Levenshtein distance over the longer length, float64; 0 where both are empty."""
    costs = np.zeros((len(rows), len(columns)))
    if not rows or not columns:
        return costs
    distances = process.cdist(rows, columns, scorer=Levenshtein.distance, dtype=np.int32)
    row_lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    column_lengths = np.fromiter(map(len, columns), dtype=np.int64, count=len(columns))
    for start in range(0, len(rows), _ROWS_PER_BLOCK):  # blocks: no second full-size temporary
        block = slice(start, start + _ROWS_PER_BLOCK)
        longest = np.maximum.outer(row_lengths[block], column_lengths)
        np.divide(distances[block], longest, out=costs[block], where=longest > 0)
    return costs
