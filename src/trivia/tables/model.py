"""The logical table that every format converts through: cells placed on a grid."""

from __future__ import annotations

from dataclasses import dataclass

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

    def text_grid(self) -> list[list[str]]:
        """Every slot holds the text of the cell covering it (`""` where no cell does).

        A spanning cell's text is repeated in every slot it covers, so that a reader indexing
        the grid by row and column sees what a person reading the table would.
        """
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
