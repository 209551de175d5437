from __future__ import annotations

import dataclasses

import pytest
from tests.support.tables import span_bomb

from trivia.tables import MAX_GRID_SLOTS, Cell, GridTooLarge, Table, html_to_otsl, html_to_table


def test_cell_defaults_to_one_empty_data_slot() -> None:
    cell = Cell(2, 3)
    assert (cell.rowspan, cell.colspan, cell.text, cell.header) == (1, 1, "", False)


def test_cells_and_tables_are_immutable_and_hashable() -> None:
    table = Table(cells=(Cell(0, 0, text="a"),), n_rows=1, n_cols=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        table.cells[0].text = "b"  # type: ignore[misc]
    assert hash(table) == hash(Table(cells=(Cell(0, 0, text="a"),), n_rows=1, n_cols=1))


def test_text_grid_repeats_a_spanning_cell_in_every_slot_it_covers() -> None:
    table = Table(
        cells=(
            Cell(0, 0, rowspan=2, colspan=2, text="big"),
            Cell(0, 2, text="r"),
            Cell(1, 2, text="s"),
            Cell(2, 0, text="t"),
        ),
        n_rows=3,
        n_cols=3,
    )
    assert table.text_grid() == [["big", "big", "r"], ["big", "big", "s"], ["t", "", ""]]


def test_text_grid_of_an_empty_table_is_empty() -> None:
    assert Table(cells=(), n_rows=0, n_cols=0).text_grid() == []


def test_structure_compares_layout_not_text_or_headers() -> None:
    a = Table(cells=(Cell(0, 0, colspan=2, text="x", header=True),), n_rows=1, n_cols=2)
    b = Table(cells=(Cell(0, 0, colspan=2, text="y"),), n_rows=1, n_cols=2)
    c = Table(cells=(Cell(0, 0, text="x"), Cell(0, 1, text="x")), n_rows=1, n_cols=2)
    assert a.structure() == b.structure()
    assert a.structure() != c.structure()
    assert {a.structure(), b.structure(), c.structure()} == {a.structure(), c.structure()}
    assert a.structure() == (1, 2, ((0, 0, 1, 2),))


def test_the_expanded_grid_is_bounded_before_anything_is_built() -> None:
    html = span_bomb()
    assert 45_000 < len(html) < 50_000
    table = html_to_table(html)  # reading spans is linear in the cells, not their area
    assert table is not None and table.slots > 100 * MAX_GRID_SLOTS  # 48 million
    with pytest.raises(GridTooLarge, match=r"slots after spans \(limit 100,000\)"):
        table.text_grid()
    with pytest.raises(GridTooLarge):
        html_to_otsl(html)
    small = Table(cells=(Cell(0, 0, 2, 3, "x"),), n_rows=2, n_cols=3)
    assert small.slots == 6
    with pytest.raises(GridTooLarge, match="2 rows x 3 columns = 6 slots"):
        small.text_grid(limit=5)
    assert small.text_grid(limit=6) == [["x"] * 3] * 2
