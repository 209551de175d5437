"""HTML tables to and from the logical table.

Reading follows the HTML table model as browsers apply it, so that a grid means what a person
viewing the table sees:

* rows come from ``<tr>`` elements directly in the table or in ``<thead>``/``<tbody>``/
  ``<tfoot>``, in document order; cells outside any ``<tr>`` form a row of their own;
* each cell takes the first free slot of its row, left to right;
* spans are read as browsers read them (``"2.0"`` is 2; ``"abc"``, ``"0"`` or a negative
  ``colspan`` is 1; ``colspan`` at most 1000); ``rowspan="0"`` and rowspans past the end of the
  row group stop at the end of the row group;
* where cells would overlap, the earlier cell keeps the slot: a later cell's ``colspan`` is cut
  at the first slot in its row that a ``rowspan`` from above already covers (cells are placed
  row by row, so that is the only way two can collide);
* cell text is the text inside the cell with inline markup removed, ``<br>`` read as a space and
  whitespace kept as found.
"""

from __future__ import annotations

from collections.abc import Iterable

import lxml.html
from lxml import etree

from trivia.tables.model import Cell, Table
from trivia.tables.parsing import find_table, parse_colspan, parse_rowspan, strip_unparsable

_ROW_GROUPS = frozenset(("thead", "tbody", "tfoot"))
_CELLS = frozenset(("td", "th"))


def _tag(element: lxml.html.HtmlElement) -> str:
    return element.tag if isinstance(element.tag, str) else ""  # comments have no str tag


def _rows(children: Iterable[lxml.html.HtmlElement]) -> list[list[lxml.html.HtmlElement]]:
    """The cells of each row among `children`; consecutive cells outside a ``<tr>`` are a row."""
    rows: list[list[lxml.html.HtmlElement]] = []
    stray: list[lxml.html.HtmlElement] | None = None
    for child in children:
        tag = _tag(child)
        if tag == "tr":
            rows.append([cell for cell in child if _tag(cell) in _CELLS])
            stray = None
        elif tag in _CELLS:
            if stray is None:
                stray = []
                rows.append(stray)
            stray.append(child)
    return rows


def _row_groups(table: lxml.html.HtmlElement) -> list[list[list[lxml.html.HtmlElement]]]:
    """The table's rows, grouped as rowspans are bounded: by row group.

    Rows directly in the table form an implicit group between the explicit ones.
    """
    segments: list[list[lxml.html.HtmlElement]] = [[]]
    for child in table:
        if _tag(child) in _ROW_GROUPS:
            segments.append(list(child))
            segments.append([])
        else:
            segments[-1].append(child)
    return [rows for segment in segments if (rows := _rows(segment))]


def _cell_text(cell: lxml.html.HtmlElement) -> str:
    parts: list[str] = []
    for event, element in etree.iterwalk(cell, events=("start", "end")):
        if event == "start":
            if element.tag == "br":
                parts.append(" ")
            if element.text:
                parts.append(element.text)
        elif element is not cell and element.tail:
            parts.append(element.tail)
    return "".join(parts)


def html_to_table(html: str) -> Table | None:
    """Read the first table in `html` into a `Table`; None when lxml finds no ``<table>``.

    Takes time in proportion to the cells and their column spans, not their areas, so that a
    huge ``rowspan`` in a model's output costs nothing.
    """
    element = find_table(html)
    if element is None:
        return None
    # Rows are filled top to bottom, so a slot can only be taken by a cell from an earlier row
    # (or the same row, to the left): for each column, the row where it becomes free is enough.
    free_from: list[int] = []
    cells: list[Cell] = []
    first_row = 0
    for group in _row_groups(element):
        group_end = first_row + len(group)
        for offset, row in enumerate(group):
            r = first_row + offset
            col = 0
            for cell in row:
                while col < len(free_from) and free_from[col] > r:
                    col += 1
                rowspan = parse_rowspan(cell.get("rowspan"))
                if rowspan == 0 or rowspan > group_end - r:
                    rowspan = group_end - r
                colspan = parse_colspan(cell.get("colspan"))
                if len(free_from) < col + colspan:
                    free_from.extend([0] * (col + colspan - len(free_from)))
                width = 1
                while width < colspan and free_from[col + width] <= r:
                    width += 1
                free_from[col : col + width] = [r + rowspan] * width
                text = _cell_text(cell)
                cells.append(Cell(r, col, rowspan, width, text, header=cell.tag == "th"))
                col += width
        first_row = group_end
    n_cols = max((c.col + c.colspan for c in cells), default=0)
    return Table(cells=tuple(cells), n_rows=first_row, n_cols=n_cols)


def _escape(text: str) -> str:
    """Escape cell text so that lxml reads back exactly `text` (less NUL and lone surrogates)."""
    text = strip_unparsable(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("\r", "&#13;")


def table_to_html(table: Table) -> str:
    """Write a `Table` as ``<table>…</table>``: one ``<tr>`` per row, no row groups.

    Cells from ``<th>`` stay ``<th>``; spans above 1 are written as ``rowspan``/``colspan``.
    """
    by_row: list[list[Cell]] = [[] for _ in range(table.n_rows)]
    for cell in table.cells:
        if 0 <= cell.row < table.n_rows:
            by_row[cell.row].append(cell)
    parts = ["<table>"]
    for row in by_row:
        parts.append("<tr>")
        for cell in sorted(row, key=lambda c: c.col):
            tag = "th" if cell.header else "td"
            attrs = ""
            if cell.rowspan > 1:
                attrs += f' rowspan="{cell.rowspan}"'
            if cell.colspan > 1:
                attrs += f' colspan="{cell.colspan}"'
            parts.append(f"<{tag}{attrs}>{_escape(cell.text)}</{tag}>")
        parts.append("</tr>")
    parts.append("</table>")
    return "".join(parts)
