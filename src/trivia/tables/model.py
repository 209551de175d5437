"""The logical table that every format converts through: cells placed on a grid."""

from __future__ import annotations

from dataclasses import dataclass

MAX_GRID_SLOTS = 100_000
"""Largest expanded grid (rows x columns after spans) that anything here will build.

A real table has a few thousand slots; 47 KB of HTML with large ``rowspan``/``colspan`` values
can describe billions, and every reader that expands spans (the lookup answerer, OTSL output)
would build them all. One bound, checked before any expansion.
"""


class GridTooLarge(ValueError):
    """A table's expanded grid exceeds `MAX_GRID_SLOTS` (or the limit given)."""

    def __init__(self, n_rows: int, n_cols: int, limit: int) -> None:
        self.n_rows, self.n_cols, self.limit = n_rows, n_cols, limit
        super().__init__(
            f"table grid too large: {n_rows:,} rows x {n_cols:,} columns = "
            f"{n_rows * n_cols:,} slots after spans (limit {limit:,})"
        )


#: `(n_rows, n_cols, ((row, col, rowspan, colspan), ...))`, cells in row-major order.
Structure = tuple[int, int, tuple[tuple[int, int, int, int], ...]]


@dataclass(frozen=True, slots=True)
class Cell:
    """One logical cell: its top-left slot, how far it spans, and its plain text."""

    row: int
    col: int
    rowspan: int = 1
    colspan: int = 1
    text: str = ""
    header: bool = False


@dataclass(frozen=True, slots=True)
class Table:
    """A grid of `n_rows` x `n_cols` slots and the cells that cover them.

    Cells are sorted by `(row, col)` and never overlap. A slot may be covered by no cell (HTML
    rows can be ragged), which is why `text_grid` speaks of the cell *covering* a slot.
    """

    cells: tuple[Cell, ...]
    n_rows: int
    n_cols: int

    @property
    def slots(self) -> int:
        """Size of the expanded grid: every slot a spanning cell covers counts."""
        return self.n_rows * self.n_cols

    def check_grid(self, limit: int = MAX_GRID_SLOTS) -> None:
        """Raise `GridTooLarge` when expanding this table would build more than `limit` slots."""
        if self.slots > limit:
            raise GridTooLarge(self.n_rows, self.n_cols, limit)

    def text_grid(self, limit: int = MAX_GRID_SLOTS) -> list[list[str]]:
        """Every slot holds the text of the cell covering it (`""` where no cell does).

        A spanning cell's text is repeated in every slot it covers, so that a reader indexing
        the grid by row and column sees what a person reading the table would. Raises
        `GridTooLarge` over `limit` slots.
        """
        self.check_grid(limit)
        grid = [[""] * self.n_cols for _ in range(self.n_rows)]
        for cell in self.cells:
            for r in range(cell.row, min(cell.row + cell.rowspan, self.n_rows)):
                row = grid[r]
                for c in range(cell.col, min(cell.col + cell.colspan, self.n_cols)):
                    row[c] = cell.text
        return grid

    def structure(self) -> Structure:
        """The cell layout without text or header flags, for comparing two tables' grids."""
        spans = tuple((c.row, c.col, c.rowspan, c.colspan) for c in self.cells)
        return (self.n_rows, self.n_cols, spans)
