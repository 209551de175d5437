"""What the inspector pages show, computed from a kept record (pure: no I/O, no HTML templates).

A group's spread is what GRPO learns from: advantages are rewards relative to the group, so a
group whose completions all score the same teaches nothing. The cell diff compares two
completions of one group slot by slot, so a person sees which cell cost the reward.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from trivia.reward.inspector.sanitize import sanitize_table_html
from trivia.tables import Table, html_to_table, to_html


@dataclass(frozen=True)
class Spread:
    """QA-F1 over a group's scored completions."""

    scored: int
    mean: float | None
    low: float | None
    high: float | None
    std: float | None


def spread(scores: list[float | None]) -> Spread:
    """The spread of the scores that exist (population std, as GRPO normalises)."""
    values = [s for s in scores if s is not None]
    if not values:
        return Spread(0, None, None, None, None)
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    return Spread(len(values), mean, min(values), max(values), std)


def item_table_html(record: dict[str, Any], item: dict[str, Any]) -> tuple[str, bool]:
    """The item's table as safe HTML, and whether it is what the QA model saw.

    A valid item shows the table sent to the QA model; a refused one shows its completion as
    far as it parses, for a person to see what went wrong.
    """
    if item["table"] is not None and record["tables"][item["table"]] is not None:
        return sanitize_table_html(record["tables"][item["table"]]), True
    if item["completion"] is None:
        return "", False
    return sanitize_table_html(to_html(item["completion"])), False


@dataclass(frozen=True)
class DiffCell:
    """One rendered cell of a side-by-side view."""

    text: str
    rowspan: int
    colspan: int
    header: bool
    changed: bool
    where: str  # "r3 c2", for the list of changes and screen readers


def cell_diff(
    html_a: str, html_b: str
) -> tuple[list[list[DiffCell]], list[list[DiffCell]], list[tuple[str, str, str]]]:
    """Both tables as rows of cells, each marked where the other has a different cell at its
    place (text or span), and the changes as `(where, text in a, text in b)`."""
    table_a = html_to_table(html_a) or Table((), 0, 0)
    table_b = html_to_table(html_b) or Table((), 0, 0)
    at_a = {(c.row, c.col): c for c in table_a.cells}
    at_b = {(c.row, c.col): c for c in table_b.cells}
    changes: list[tuple[str, str, str]] = []
    for place in sorted(at_a.keys() | at_b.keys()):
        a, b = at_a.get(place), at_b.get(place)
        if _differs(a, b):
            changes.append(
                (_where(place), "∅" if a is None else a.text, "∅" if b is None else b.text)
            )
    return _rows(table_a, at_b), _rows(table_b, at_a), changes


def _differs(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is not b
    return (a.text, a.rowspan, a.colspan) != (b.text, b.rowspan, b.colspan)


def _where(place: tuple[int, int]) -> str:
    return f"r{place[0] + 1} c{place[1] + 1}"


def _rows(table: Table, other: dict[tuple[int, int], Any]) -> list[list[DiffCell]]:
    rows: list[list[DiffCell]] = [[] for _ in range(table.n_rows)]
    for cell in table.cells:
        rows[cell.row].append(
            DiffCell(
                text=cell.text,
                rowspan=cell.rowspan,
                colspan=cell.colspan,
                header=cell.header,
                changed=_differs(cell, other.get((cell.row, cell.col))),
                where=_where((cell.row, cell.col)),
            )
        )
    return rows
