from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tables_support import OTSL_TAG, covered_slots, otsl_soup, tilings

from trivia.tables import Cell, Table, otsl_to_table, table_to_otsl


def spans(otsl: str) -> list[tuple[int, int, int, int, str]]:
    return [(c.row, c.col, c.rowspan, c.colspan, c.text) for c in otsl_to_table(otsl).cells]


# --- well-formed OTSL, checked by hand -------------------------------------------------------


def test_plain_grid() -> None:
    table = otsl_to_table("<fcel>a<fcel>b<nl>\n<fcel>c<ecel><nl>\n")
    assert (table.n_rows, table.n_cols) == (2, 2)
    assert table.text_grid() == [["a", "b"], ["c", ""]]
    assert all(c.rowspan == c.colspan == 1 for c in table.cells)


def test_two_by_two_merge() -> None:
    otsl = "<fcel>A<lcel><fcel>B<nl>\n<ucel><xcel><fcel>C<nl>\n"
    assert spans(otsl) == [(0, 0, 2, 2, "A"), (0, 2, 1, 1, "B"), (1, 2, 1, 1, "C")]


def test_xcel_block_three_by_three_inside_a_grid() -> None:
    otsl = (
        "<fcel>h<fcel>x<lcel><lcel><nl>\n"
        "<fcel>1<ucel><xcel><xcel><nl>\n"
        "<fcel>2<ucel><xcel><xcel><nl>\n"
        "<fcel>3<fcel>a<fcel>b<fcel>c<nl>\n"
    )
    assert (0, 1, 3, 3, "x") in spans(otsl)
    assert otsl_to_table(otsl).text_grid()[2] == ["2", "x", "x", "x"]


def test_ucel_column() -> None:
    otsl = "<fcel>k<fcel>v<nl>\n<ucel><fcel>w<nl>\n<ucel><fcel>y<nl>\n"
    assert spans(otsl) == [
        (0, 0, 3, 1, "k"),
        (0, 1, 1, 1, "v"),
        (1, 1, 1, 1, "w"),
        (2, 1, 1, 1, "y"),
    ]


def test_lcel_row_and_empty_cell_spanning() -> None:
    assert spans("<ecel><lcel><lcel><nl>") == [(0, 0, 1, 3, "")]


def test_text_is_kept_as_found_and_only_otsl_tags_are_tags() -> None:
    otsl = "<fcel>x<y>z<fcel> a & b <fcel><td>1</td><fcel><FCEL>2<nl>"
    texts = [c.text for c in otsl_to_table(otsl).cells]
    assert texts == ["x<y>z", " a & b ", "<td>1</td>", "<FCEL>2"]


# --- malformed and truncated OTSL: the documented repairs ------------------------------------


def test_empty_and_blank_input_give_an_empty_table() -> None:
    for text in ("", "   \n", "\n\n"):
        assert otsl_to_table(text) == Table(cells=(), n_rows=0, n_cols=0)


def test_text_before_the_first_tag_becomes_a_cell() -> None:
    assert spans("Table:<fcel>a<nl>") == [(0, 0, 1, 1, "Table:"), (0, 1, 1, 1, "a")]


def test_text_without_any_tag_is_one_cell() -> None:
    assert spans("just words") == [(0, 0, 1, 1, "just words")]


def test_whitespace_between_rows_is_not_a_cell() -> None:
    assert spans("<fcel>a<nl>\n  <fcel>b<nl>\n") == [(0, 0, 1, 1, "a"), (1, 0, 1, 1, "b")]


def test_text_after_the_last_nl_is_kept_as_a_final_row() -> None:
    table = otsl_to_table("<fcel>a<fcel>b<nl>\n<fcel>c<fcel>trunc")
    assert table.n_rows == 2
    assert table.text_grid() == [["a", "b"], ["c", "trunc"]]
    assert spans("<fcel>a<nl>\ntail") == [(0, 0, 1, 1, "a"), (1, 0, 1, 1, "tail")]


def test_text_after_ecel_makes_it_a_text_cell_and_after_merges_is_dropped() -> None:
    assert spans("<ecel>seen<lcel>lost<nl>") == [(0, 0, 1, 2, "seen")]


def test_rows_of_unequal_length_are_not_padded() -> None:
    table = otsl_to_table("<fcel>a<fcel>b<fcel>c<nl>\n<fcel>d<nl>\n<nl>\n")
    assert (table.n_rows, table.n_cols) == (3, 3)
    assert table.text_grid() == [["a", "b", "c"], ["d", "", ""], ["", "", ""]]
    assert len(table.cells) == 4


@pytest.mark.parametrize(
    ("otsl", "expected"),
    [
        # lcel at a row start, ucel in the first row, lone xcel: nothing to merge into.
        ("<lcel><fcel>a<nl>", [(0, 0, 1, 1, ""), (0, 1, 1, 1, "a")]),
        ("<ucel><fcel>a<nl>", [(0, 0, 1, 1, ""), (0, 1, 1, 1, "a")]),
        ("<fcel>a<xcel><nl>", [(0, 0, 1, 1, "a"), (0, 1, 1, 1, "")]),
        # ucel under a row that is too short.
        ("<fcel>a<nl><fcel>b<ucel><nl>", [(0, 0, 1, 1, "a"), (1, 0, 1, 1, "b"), (1, 1, 1, 1, "")]),
        # ucel under the second column of a wide cell (an xcel belongs there).
        (
            "<fcel>a<lcel><nl><fcel>b<ucel><nl>",
            [(0, 0, 1, 2, "a"), (1, 0, 1, 1, "b"), (1, 1, 1, 1, "")],
        ),
        # lcel continuing a cell in a row the cell only reached through ucel.
        ("<fcel>a<nl><ucel><lcel><nl>", [(0, 0, 2, 1, "a"), (1, 1, 1, 1, "")]),
    ],
)
def test_orphan_merges_become_empty_cells(otsl: str, expected: list) -> None:
    assert spans(otsl) == expected


def test_lcel_after_an_orphan_merge_extends_it() -> None:
    assert spans("<lcel><lcel><nl>") == [(0, 0, 1, 2, "")]


def test_a_wide_cell_missing_its_xcel_keeps_only_its_complete_rows() -> None:
    # Row 2 opens the 2-wide cell with ucel but then writes fcel where xcel belongs.
    otsl = "<fcel>a<lcel><nl>\n<ucel><xcel><nl>\n<ucel><fcel>b<nl>\n"
    assert spans(otsl) == [(0, 0, 2, 2, "a"), (2, 0, 1, 1, ""), (2, 1, 1, 1, "b")]


def test_a_wide_cell_cut_by_a_short_row_keeps_only_its_complete_rows() -> None:
    otsl = "<fcel>a<lcel><lcel><nl>\n<ucel><xcel><nl>\n"
    assert spans(otsl) == [(0, 0, 1, 3, "a"), (1, 0, 1, 1, ""), (1, 1, 1, 1, "")]


def test_a_later_ucel_merges_with_what_a_repair_left() -> None:
    otsl = "<fcel>a<lcel><nl>\n<ucel><fcel>b<nl>\n<ucel><ucel><nl>\n"
    assert spans(otsl) == [(0, 0, 1, 2, "a"), (1, 0, 2, 1, ""), (1, 1, 2, 1, "b")]


@pytest.mark.timeout(20)  # a hang guard: quadratic repair would take minutes
def test_3000_cells_in_one_row_are_parsed() -> None:
    table = otsl_to_table("<fcel>x" * 3000 + "<nl>\n")
    assert (table.n_rows, table.n_cols, len(table.cells)) == (1, 3000, 3000)


@pytest.mark.timeout(20)  # a hang guard: quadratic repair would take minutes
@pytest.mark.parametrize(
    "otsl",
    [
        "<ecel>" * 8000 + "<nl>" * 500,  # padding this would need 4 million cells
        "<fcel>a" + "<lcel>" * 3000 + "<nl>" + ("<ucel>" + "<xcel>" * 2999 + "<nl>") * 3,
        ("<fcel>a" + "<lcel>" * 2000 + "<nl>" + "<ucel>" + "<xcel>" * 1998 + "<fcel>b<nl>") * 5,
        "<ucel><xcel><lcel>" * 2800,
        "x<y>z" * 10_000,
    ],
)
def test_adversarial_50k_inputs_finish(otsl: str) -> None:
    assert len(otsl) >= 25_000
    covered_slots(otsl_to_table(otsl))


# --- writing OTSL ----------------------------------------------------------------------------


def test_table_to_otsl_writes_each_row_with_its_terminator() -> None:
    table = Table(
        cells=(Cell(0, 0, 2, 2, "A"), Cell(0, 2, text="B"), Cell(1, 2)), n_rows=2, n_cols=3
    )
    assert table_to_otsl(table) == "<fcel>A<lcel><fcel>B<nl>\n<ucel><xcel><ecel><nl>\n"


def test_table_to_otsl_fills_interior_holes_and_keeps_ragged_ends() -> None:
    table = Table(
        cells=(Cell(0, 0, text="a"), Cell(0, 2, 2, 1, "c"), Cell(1, 0, text="d")),
        n_rows=2,
        n_cols=3,
    )
    assert table_to_otsl(table) == "<fcel>a<ecel><fcel>c<nl>\n<fcel>d<ecel><ucel><nl>\n"
    assert table_to_otsl(Table(cells=(Cell(0, 0, text="a"),), n_rows=2, n_cols=1)) == (
        "<fcel>a<nl>\n<nl>\n"
    )


def test_table_to_otsl_removes_otsl_tags_from_text() -> None:
    table = Table(cells=(Cell(0, 0, text="a<nl>b<fc<ecel>el>c"),), n_rows=1, n_cols=1)
    assert table_to_otsl(table) == "<fcel>abc<nl>\n"


def test_table_to_otsl_of_overlapping_hand_built_cells_lets_the_first_win() -> None:
    table = Table(cells=(Cell(0, 0, 1, 2, "a"), Cell(0, 1, text="b")), n_rows=1, n_cols=2)
    assert table_to_otsl(table) == "<fcel>a<lcel><nl>\n"


# --- properties ------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(tilings())
def test_well_formed_otsl_round_trips_exactly(table: Table) -> None:
    otsl = table_to_otsl(table)
    assert otsl_to_table(otsl) == table
    assert otsl.count("<nl>") == table.n_rows
    rows = otsl.split("<nl>\n")
    assert rows[-1] == ""
    assert all(len(OTSL_TAG.findall(row)) == table.n_cols for row in rows[:-1])


@settings(max_examples=400, deadline=None)
@given(st.one_of(otsl_soup, st.text()))
def test_any_text_parses_to_a_table_of_rectangles_that_cover_each_row(text: str) -> None:
    table = otsl_to_table(text)
    slots = covered_slots(table)
    rows: dict[int, set[int]] = {}
    for r, c in slots:
        rows.setdefault(r, set()).add(c)
    for cols in rows.values():
        assert cols == set(range(len(cols))), "only the end of a row may be uncovered"


@settings(max_examples=400, deadline=None)
@given(st.one_of(otsl_soup, st.text()))
def test_a_parsed_table_is_a_fixed_point_of_writing_and_reading(text: str) -> None:
    table = otsl_to_table(text)
    assert otsl_to_table(table_to_otsl(table)) == table
