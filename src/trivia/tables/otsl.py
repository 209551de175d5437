"""OTSL (Optimised Table Structure Language) to and from the logical table.

OTSL, as defined by IBM's OTSL paper and docling, writes a table as a grid of one token per slot,
row by row: ``<fcel>`` starts a cell whose text follows the tag, ``<ecel>`` starts an empty cell,
``<lcel>`` extends the cell on its left, ``<ucel>`` the cell above, ``<xcel>`` both (the inner
slots of a cell that spans rows and columns), and ``<nl>`` ends a row. Merge tokens never start a
cell, and every spanning cell covers a rectangle: ``fcel lcel lcel`` in its first row, then
``ucel xcel xcel`` in each further row.

Model output is often truncated or malformed, and `otsl_to_table` must still give a table (it is
total: any string in, a `Table` out, in time linear in the input). The repair rules:

* Only the six tags above, lower-case, are tags; any other text (``x<y>z``, ``<td>``) is text.
* A cell's text is everything between its tag and the next tag, whitespace included; text after
  an ``<ecel>`` makes it a cell with that text. Text after a merge tag is dropped.
* Whitespace between rows (the ``\\n`` after ``<nl>``) is ignored. Other text before the first
  tag of a row becomes a cell of its own at the start of that row (its leading whitespace
  removed), and text after the last ``<nl>`` is kept as a final row when it holds any tag or
  non-blank text.
* A merge token that has nothing valid to merge into (an ``<lcel>`` at a row start or right of a
  cell that already spans rows, a ``<ucel>`` under a short row or under a cell's non-first column,
  an ``<xcel>`` not inside a rectangle that its row's ``<ucel>`` opened) becomes an empty cell.
* When a row stops extending a multi-column cell before its last column (a missing ``<xcel>`` or a
  row that ends early), that row is taken back out of the cell: the cell keeps its earlier rows
  and the row's slots become empty cells, so every cell stays a rectangle.
* Rows of unequal length are kept as they are, not padded: `Table.n_cols` is the longest row, and
  the slots after a short row's end are covered by no cell (HTML tables may be ragged too, and
  padding could make the output quadratic in the input).
"""

from __future__ import annotations

import re

from trivia.tables.model import Cell, Table

#: One OTSL tag; the group is the tag's name, so `split` alternates text and names.
OTSL_TAG = re.compile(r"<(fcel|ecel|lcel|ucel|xcel|nl)>")
_STARTS = frozenset(("fcel", "ecel"))

# Index of each field in the mutable cell records used while parsing.
_ROW, _COL, _ROWSPAN, _COLSPAN, _TEXT = range(5)


def _split_rows(otsl: str) -> list[list[tuple[str, str]]]:
    """Rows of `(tag, text after it)`; stray leading text becomes an ``fcel``."""
    parts = OTSL_TAG.split(otsl)
    rows: list[list[tuple[str, str]]] = []
    row: list[tuple[str, str]] = []
    if parts[0].strip():
        row.append(("fcel", parts[0].lstrip()))
    for i in range(1, len(parts), 2):
        tag, text = parts[i], parts[i + 1]
        if tag == "nl":
            rows.append(row)
            row = []
            if text.strip():
                row.append(("fcel", text.lstrip()))
        else:
            row.append((tag, text))
    if row:
        rows.append(row)
    return rows


def _new_cell(cells: list[list], r: int, c: int, text: str) -> int:
    cells.append([r, c, 1, 1, text])
    return len(cells) - 1


def _take_back(cells: list[list], owner: list[int], r: int, cell: int, end: int) -> None:
    """Undo a cell's extension into row `r`; its slots there up to `end` become empty cells."""
    record = cells[cell]
    record[_ROWSPAN] -= 1
    for c in range(record[_COL], end):
        owner[c] = _new_cell(cells, r, c, "")


def otsl_to_table(otsl: str) -> Table:
    """Parse OTSL into a `Table`, repairing malformed input by the rules in this module's doc."""
    rows = _split_rows(otsl)
    cells: list[list] = []  # [row, col, rowspan, colspan, text], mutable while parsing
    above: list[int] = []  # owner (index in `cells`) of each slot of the previous row
    for r, row in enumerate(rows):
        owner = [-1] * len(row)
        # A multi-column cell whose ``ucel`` opened this row and that still needs ``xcel``s.
        open_cell, open_end = -1, -1
        for c, (tag, text) in enumerate(row):
            if open_cell >= 0:
                if tag == "xcel":
                    owner[c] = open_cell
                    if c == open_end:
                        open_cell = -1
                    continue
                _take_back(cells, owner, r, open_cell, c)
                open_cell = -1
            if tag in _STARTS:
                owner[c] = _new_cell(cells, r, c, text)
            elif tag == "lcel":
                left = owner[c - 1] if c > 0 else -1
                record = cells[left] if left >= 0 else None
                if record and record[_ROW] == r and record[_COL] + record[_COLSPAN] == c:
                    record[_COLSPAN] += 1
                    owner[c] = left
                else:
                    owner[c] = _new_cell(cells, r, c, "")
            elif tag == "ucel":
                up = above[c] if c < len(above) else -1
                record = cells[up] if up >= 0 else None
                if record and record[_COL] == c and record[_ROW] + record[_ROWSPAN] == r:
                    record[_ROWSPAN] += 1
                    owner[c] = up
                    if record[_COLSPAN] > 1:
                        open_cell, open_end = up, c + record[_COLSPAN] - 1
                else:
                    owner[c] = _new_cell(cells, r, c, "")
            else:  # an xcel outside any rectangle opened in this row
                owner[c] = _new_cell(cells, r, c, "")
        if open_cell >= 0:
            _take_back(cells, owner, r, open_cell, len(row))
        above = owner

    cells.sort(key=lambda rec: (rec[_ROW], rec[_COL]))
    return Table(
        cells=tuple(
            Cell(row=r, col=c, rowspan=rs, colspan=cs, text=t) for r, c, rs, cs, t in cells
        ),
        n_rows=len(rows),
        n_cols=max((len(row) for row in rows), default=0),
    )


def _otsl_safe(text: str) -> str:
    """Remove OTSL tags from cell text: OTSL has no escaping, so they would be read as tags."""
    while OTSL_TAG.search(text):
        text = OTSL_TAG.sub("", text)
    return text


def table_to_otsl(table: Table) -> str:
    """Write a `Table` as OTSL, one row per line, each ending in ``<nl>``.

    Each row runs to its last covered slot; a slot no cell covers before that is an ``<ecel>``.
    Cell text loses any OTSL tags it contains, since OTSL cannot escape them. Tables from this
    package never overlap; for a hand-built one whose cells do, the first cell in row-major order
    keeps a shared slot and a cell whose top-left slot is taken is left out. Raises
    `GridTooLarge` when the grid has more than `MAX_GRID_SLOTS` slots.
    """
    table.check_grid()
    slots: list[dict[int, str]] = [{} for _ in range(table.n_rows)]
    for cell in table.cells:
        if not (0 <= cell.row < table.n_rows and 0 <= cell.col < table.n_cols):
            continue
        if cell.col in slots[cell.row]:
            continue
        last_row = min(cell.row + cell.rowspan, table.n_rows)
        last_col = min(cell.col + cell.colspan, table.n_cols)
        for r in range(cell.row, last_row):
            row = slots[r]
            for c in range(cell.col, last_col):
                if c in row:
                    continue
                if r == cell.row and c == cell.col:
                    text = _otsl_safe(cell.text)
                    row[c] = f"<fcel>{text}" if text else "<ecel>"
                elif r == cell.row:
                    row[c] = "<lcel>"
                elif c == cell.col:
                    row[c] = "<ucel>"
                else:
                    row[c] = "<xcel>"
    lines = []
    for row in slots:
        width = max(row, default=-1) + 1
        lines.append("".join(row.get(c, "<ecel>") for c in range(width)) + "<nl>\n")
    return "".join(lines)
