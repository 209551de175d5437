"""Hypothesis strategies and invariant checks shared by the table-format tests."""

from __future__ import annotations

import re

from hypothesis import strategies as st

from trivia.tables import Cell, Table

OTSL_TAG = re.compile(r"<(fcel|ecel|lcel|ucel|xcel|nl)>")

# Text that looks like markup but is not OTSL, plus characters HTML and lxml treat specially.
_TRICKY_TEXT = st.sampled_from(
    ["x<y>z", "a & b", "<td>", "</table>", "&amp;", "<FCEL>", "<nl", "nl>", " ", "\n", "\r", "\t"]
)
cell_text = st.one_of(st.text(max_size=8), _TRICKY_TEXT).filter(lambda t: not OTSL_TAG.search(t))

# Strings built from OTSL tokens and arbitrary text: malformed OTSL of every kind.
otsl_soup = st.lists(
    st.one_of(
        st.sampled_from(["<fcel>", "<ecel>", "<lcel>", "<ucel>", "<xcel>", "<nl>", "<nl>\n"]),
        cell_text,
    ),
    max_size=40,
).map("".join)

_HTML_PIECES = st.sampled_from(
    [
        "<table>", "</table>", "<tr>", "</tr>", "<td>", "</td>", "<th>", "</th>",
        "<thead>", "</thead>", "<tbody>", "</tbody>", "<tfoot>", "</tfoot>",
        '<td rowspan="2">', '<td colspan="2">', '<td rowspan="3" colspan="2">',
        '<td rowspan="0">', '<td colspan="2.0">', '<td colspan="abc">', '<th rowspan="-1">',
        '<td colspan="99999999999">', "<b>", "</b>", "<sup>", "</sup>", "<br>", "<span>",
        "</span>", "<p>", "</p>", "<div>", "</div>", "&amp;", "&nbsp;", "&lt;", "<!-- c -->",
        "<caption>", "</caption>", "<colgroup><col></colgroup>", '<math alttext="x^2">x</math>',
    ]
)  # fmt: skip
html_soup = st.lists(st.one_of(_HTML_PIECES, st.text(max_size=6)), max_size=40).map("".join)


@st.composite
def tilings(draw: st.DrawFn, max_rows: int = 6, max_cols: int = 6) -> Table:
    """A table whose cells tile a full grid: what well-formed OTSL describes."""
    n_rows = draw(st.integers(0, max_rows))
    n_cols = draw(st.integers(1, max_cols)) if n_rows else 0
    taken = [[False] * n_cols for _ in range(n_rows)]
    cells = []
    for r in range(n_rows):
        for c in range(n_cols):
            if taken[r][c]:
                continue
            free = 1
            while c + free < n_cols and not taken[r][c + free]:
                free += 1
            width = draw(st.integers(1, free))
            height = draw(st.integers(1, n_rows - r))
            for rr in range(r, r + height):
                for cc in range(c, c + width):
                    taken[rr][cc] = True
            cells.append(Cell(r, c, height, width, draw(cell_text)))
    return Table(cells=tuple(cells), n_rows=n_rows, n_cols=n_cols)


def covered_slots(table: Table) -> dict[tuple[int, int], Cell]:
    """Each covered slot's cell, asserting the invariants every `Table` here must keep."""
    assert list(table.cells) == sorted(table.cells, key=lambda c: (c.row, c.col))
    slots: dict[tuple[int, int], Cell] = {}
    for cell in table.cells:
        assert cell.rowspan >= 1 and cell.colspan >= 1
        assert cell.row >= 0 and cell.row + cell.rowspan <= table.n_rows
        assert cell.col >= 0 and cell.col + cell.colspan <= table.n_cols
        for r in range(cell.row, cell.row + cell.rowspan):
            for c in range(cell.col, cell.col + cell.colspan):
                assert (r, c) not in slots, f"cells overlap at {(r, c)}"
                slots[(r, c)] = cell
    return slots
