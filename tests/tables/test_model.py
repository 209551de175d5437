from __future__ import annotations

import dataclasses

import pytest

from trivia.tables import Cell, Table


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
