from __future__ import annotations

import lxml.html
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tables_support import covered_slots, html_soup, tilings

from trivia.tables import Cell, Table, html_to_table, table_to_html


def layout(html: str) -> list[tuple[int, int, int, int, str]]:
    table = html_to_table(html)
    assert table is not None
    return [(c.row, c.col, c.rowspan, c.colspan, c.text) for c in table.cells]


def td_texts(html: str) -> list[str]:
    """Cell texts as lxml, an independent reader, sees them."""
    return [td.text_content() for td in lxml.html.fromstring(html).iter("td", "th")]


# --- reading ---------------------------------------------------------------------------------


def test_row_groups_headers_and_spans() -> None:
    html = (
        "<table><thead><tr><th rowspan='2'>Name</th><th colspan='2'>Score</th></tr>"
        "<tr><th>A</th><th>B</th></tr></thead>"
        "<tbody><tr><td>x</td><td>1</td><td>2</td></tr></tbody>"
        "<tfoot><tr><td colspan='3'>note</td></tr></tfoot></table>"
    )
    table = html_to_table(html)
    assert table is not None
    assert (table.n_rows, table.n_cols) == (4, 3)
    assert table.text_grid() == [
        ["Name", "Score", "Score"],
        ["Name", "A", "B"],
        ["x", "1", "2"],
        ["note", "note", "note"],
    ]
    assert [c.header for c in table.cells] == [True] * 4 + [False] * 4


def test_cell_text_drops_markup_decodes_entities_and_keeps_whitespace() -> None:
    html = "<table><tr><td> <b>Na</b><sup>+</sup> &amp; K<br>x&lt;y&gt;z </td></tr></table>"
    assert layout(html) == [(0, 0, 1, 1, " Na+ & K x<y>z ")]


def test_no_table_gives_none() -> None:
    for text in ("", "   ", "plain text", "<div><tr><td>x</td></tr></div>", "<table", "\x00"):
        assert html_to_table(text) is None


def test_first_table_is_read_and_text_around_it_ignored() -> None:
    html = "Here: <table><tr><td>1</td></tr></table><table><tr><td>2</td></tr></table>"
    assert layout(html) == [(0, 0, 1, 1, "1")]


def test_truncated_html_is_read_as_lxml_closes_it() -> None:
    assert layout("<table><tr><td>a</td><td>b") == [(0, 0, 1, 1, "a"), (0, 1, 1, 1, "b")]


def test_cells_outside_a_row_form_a_row() -> None:
    html = "<table><td>a</td><td>b</td><tr><td>c</td></tr></table>"
    assert layout(html) == [(0, 0, 1, 1, "a"), (0, 1, 1, 1, "b"), (1, 0, 1, 1, "c")]


def test_empty_rows_count() -> None:
    table = html_to_table("<table><tr></tr><tr><td>a</td></tr></table>")
    assert table == Table(cells=(Cell(1, 0, text="a"),), n_rows=2, n_cols=1)


@pytest.mark.parametrize(
    ("value", "colspan"),
    [("2.0", 2), (" 3", 3), ("+2", 2), ("2abc", 2), ("0", 1), ("abc", 1), ("", 1), ("-2", 1),
     ("99999999999", 1000), ("9" * 5000, 1000), ("0002", 2)],
)  # fmt: skip
def test_bad_colspan_values_are_read_as_browsers_do(value: str, colspan: int) -> None:
    table = html_to_table(f'<table><tr><td colspan="{value}">x</td></tr></table>')
    assert table is not None
    assert table.cells[0].colspan == colspan


@pytest.mark.parametrize(
    ("value", "rowspan"),
    [("2.0", 2), ("abc", 1), ("-1", 1), ("0", 3), ("99999999999", 3), ("7", 3)],
)
def test_rowspans_stop_at_the_end_of_their_row_group(value: str, rowspan: int) -> None:
    html = (
        f'<table><tbody><tr><td rowspan="{value}">x</td></tr><tr></tr><tr></tr></tbody>'
        "<tbody><tr><td>after</td></tr></tbody></table>"
    )
    table = html_to_table(html)
    assert table is not None
    assert table.cells[0].rowspan == rowspan
    assert table.cells[-1] == Cell(3, 0, text="after")


def test_overlapping_spans_first_cell_keeps_the_slot() -> None:
    # Row 1's colspan=3 cell runs into the slot held by row 0's rowspan: it is cut to width 1.
    html = (
        "<table><tr><td>a</td><td rowspan='2'>b</td><td>c</td></tr>"
        "<tr><td colspan='3'>d</td><td>e</td></tr></table>"
    )
    assert layout(html) == [
        (0, 0, 1, 1, "a"),
        (0, 1, 2, 1, "b"),
        (0, 2, 1, 1, "c"),
        (1, 0, 1, 1, "d"),
        (1, 2, 1, 1, "e"),
    ]


def test_overlapping_rowspan_is_cut_where_a_later_row_is_taken() -> None:
    html = (
        "<table><tr><td>a</td><td rowspan='3'>b</td></tr>"
        "<tr><td rowspan='2' colspan='2'>c</td></tr><tr><td>d</td></tr></table>"
    )
    # c is cut to width 1 by b; in row 2 its column 0 is free, so it keeps both rows.
    assert layout(html) == [
        (0, 0, 1, 1, "a"),
        (0, 1, 3, 1, "b"),
        (1, 0, 2, 1, "c"),
        (2, 2, 1, 1, "d"),
    ]


def test_nested_table_text_belongs_to_its_outer_cell() -> None:
    html = "<table><tr><td>a<table><tr><td>in</td></tr></table>b</td><td>c</td></tr></table>"
    assert layout(html) == [(0, 0, 1, 1, "ainb"), (0, 1, 1, 1, "c")]


@pytest.mark.timeout(20)  # a hang guard: quadratic repair would take minutes
def test_3000_cells_in_a_row_are_read() -> None:
    html = "<table><tr>" + "<td>x</td>" * 3000 + "</tr></table>"
    table = html_to_table(html)
    assert table is not None and table.n_cols == 3000


@pytest.mark.timeout(20)  # a hang guard: quadratic repair would take minutes
@pytest.mark.parametrize(
    "html",
    [
        "<table><tr><td colspan=1000 rowspan=0>x</td></tr>" + "<tr>" * 12_000 + "</table>",
        "<table><tr>" + "<td colspan=1000 rowspan=65534></td>" * 1500 + "</tr></table>",
    ],
)
def test_huge_spans_are_clamped(html: str) -> None:
    table = html_to_table(html)
    assert table is not None and table.cells[0].colspan == 1000


# --- writing ---------------------------------------------------------------------------------


def test_table_to_html_writes_spans_headers_and_escaped_text() -> None:
    table = Table(
        cells=(
            Cell(0, 0, 1, 2, "Head", header=True),
            Cell(1, 0, text="a & b"),
            Cell(1, 1, text="x<y>z"),
        ),
        n_rows=2,
        n_cols=2,
    )
    html = table_to_html(table)
    assert html == (
        '<table><tr><th colspan="2">Head</th></tr>'
        "<tr><td>a &amp; b</td><td>x&lt;y&gt;z</td></tr></table>"
    )
    assert td_texts(html) == ["Head", "a & b", "x<y>z"]


def test_table_to_html_of_an_empty_table() -> None:
    assert table_to_html(Table(cells=(), n_rows=0, n_cols=0)) == "<table></table>"


def test_carriage_returns_survive_and_nul_is_dropped() -> None:
    table = Table(cells=(Cell(0, 0, text="a\rb\x00c\r\n"),), n_rows=1, n_cols=1)
    assert layout(table_to_html(table)) == [(0, 0, 1, 1, "a\rbc\r\n")]


# --- properties ------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.one_of(html_soup, st.text()))
def test_any_text_reads_to_none_or_a_table_of_disjoint_rectangles(text: str) -> None:
    table = html_to_table(text)
    if table is not None:
        covered_slots(table)


@settings(max_examples=300, deadline=None)
@given(st.one_of(html_soup, st.text()))
def test_a_read_table_is_a_fixed_point_of_writing_and_reading(text: str) -> None:
    table = html_to_table(text)
    if table is not None:
        assert html_to_table(table_to_html(table)) == table


@settings(max_examples=200, deadline=None)
@given(tilings(), st.booleans())
def test_written_tables_read_back_identically(table: Table, header: bool) -> None:
    table = Table(
        cells=tuple(
            Cell(c.row, c.col, c.rowspan, c.colspan, c.text.replace("\x00", ""), header)
            for c in table.cells
        ),
        n_rows=table.n_rows,
        n_cols=table.n_cols,
    )
    assert html_to_table(table_to_html(table)) == table
