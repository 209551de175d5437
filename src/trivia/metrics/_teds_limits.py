"""Size limits for TEDS: the one place their defaults live, and the error that enforces them.

The tree edit distance takes time and memory quadratic in the number of tree nodes (float64
matrices of nodes(pred) × nodes(gt)), and the cell rename costs take time proportional to the
product of content lengths. The defaults admit any real table with room to spare — a 2,000-cell
table has about 2,100 nodes, and 2,000 cells in any shape stay under 4,100 — while refusing inputs
that would take unbounded time or memory: a pair at the node limit takes about 0.45 GB and a
second or two.
"""

from __future__ import annotations

DEFAULT_MAX_NODES = 5_000
"""Largest number of tree nodes (table, sections, rows, cells, markup inside header cells)."""

DEFAULT_MAX_CHARS = 200_000
"""Largest number of cell-content tokens (characters plus inline-tag markers) in one table."""


class TableTooLarge(ValueError):
    """A table exceeds the TEDS size limits; carries its sizes and the limits it broke."""

    def __init__(self, *, nodes: int, chars: int, max_nodes: int, max_chars: int) -> None:
        self.nodes = nodes
        self.chars = chars
        self.max_nodes = max_nodes
        self.max_chars = max_chars
        super().__init__(
            f"table too large for TEDS: {nodes:,} tree nodes (limit {max_nodes:,}), "
            f"{chars:,} content tokens (limit {max_chars:,})"
        )


def check_size(*, nodes: int, chars: int, max_nodes: int, max_chars: int) -> None:
    """Raise `TableTooLarge` when a table breaks either limit."""
    if nodes > max_nodes or chars > max_chars:
        raise TableTooLarge(nodes=nodes, chars=chars, max_nodes=max_nodes, max_chars=max_chars)
