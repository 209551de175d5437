"""Deterministic question-answer pairs from a ground-truth table, for data without an LLM.

Questions come in three kinds:

- ``cell``: one per body cell, "What is the <column header> of <row header>?" or "What is the
  value in row <row header>, column <column header>?" (alternating), answered by the cell's text.
  Only questions that the lookup answerer (`trivia.qa.lookup`) answers correctly from the ground
  truth itself are kept, so a perfect recognition earns a QA-F1 of 1 with that answerer.
- ``count``: "How many rows of data does the table have?", answered with the number.
- ``unit``: for a column header that names a unit in brackets ("Weight (kg)"), "What is the
  unit of <header>?", answered by the unit.

``count`` and ``unit`` need a real answering LLM (the lookup answerer reads cells only), so the
default is ``cell``. The same table always gives the same questions in the same order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from trivia.qa.lookup import answer_question
from trivia.tables import html_to_table

QuestionKind = Literal["cell", "count", "unit"]
KINDS: tuple[QuestionKind, ...] = ("cell", "count", "unit")
_SPACES = re.compile(r"\s+")
_UNIT = re.compile(r"^(?P<name>.*?\S)\s*[(\[](?P<unit>[^()\[\]]{1,12})[)\]]\s*$")


@dataclass(frozen=True, slots=True)
class _Grid:
    rows: list[list[str]]
    header_rows: int


def _grid(html: str) -> _Grid | None:
    table = html_to_table(html)
    if table is None or not table.n_rows or not table.n_cols:
        return None
    rows = [[_SPACES.sub(" ", t).strip() for t in row] for row in table.text_grid()]
    header_rows = 0
    while header_rows < table.n_rows - 1 and any(
        c.header for c in table.cells if c.row == header_rows
    ):
        header_rows += 1
    return _Grid(rows, max(header_rows, 1))


def _column_label(grid: _Grid, col: int) -> str:
    for r in reversed(range(grid.header_rows)):
        if grid.rows[r][col]:
            return grid.rows[r][col]
    return ""


def _cell_questions(grid: _Grid, html: str) -> list[dict[str, str]]:
    body = grid.rows[grid.header_rows :]
    row_labels = [row[0] for row in body]
    col_labels = [_column_label(grid, c) for c in range(len(grid.rows[0]))]
    pairs: list[dict[str, str]] = []
    for i, row in enumerate(body):
        label = row_labels[i]
        if not label or row_labels.count(label) > 1:
            continue
        for c in range(1, len(row)):
            column, answer = col_labels[c], row[c]
            if not answer or not column or col_labels.count(column) > 1 or answer == label:
                continue
            forms = [
                f"What is the {column} of {label}?",
                f"What is the value in row {label}, column {column}?",
            ]
            if len(pairs) % 2:
                forms.reverse()
            for question in forms:
                if answer_question(html, question) == answer:
                    pairs.append({"question": question, "answer": answer})
                    break
    return pairs


def _count_questions(grid: _Grid) -> list[dict[str, str]]:
    data_rows = len(grid.rows) - grid.header_rows
    return [{"question": "How many rows of data does the table have?", "answer": str(data_rows)}]


def _unit_questions(grid: _Grid) -> list[dict[str, str]]:
    pairs = []
    for c in range(len(grid.rows[0])):
        match = _UNIT.match(_column_label(grid, c))
        if match and not match["unit"].strip().isdigit():
            pairs.append(
                {"question": f"What is the unit of {match['name']}?", "answer": match["unit"]}
            )
    return pairs


def _spread(items: list[dict[str, str]], limit: int) -> list[dict[str, str]]:
    """At most `limit` items, evenly spaced over the table rather than its first rows."""
    if len(items) <= limit:
        return items
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]


def qa_from_table(
    html: str, *, kinds: Sequence[QuestionKind] = ("cell",), max_questions: int = 30
) -> list[dict[str, str]]:
    """Question-answer pairs (``{"question", "answer"}``) about a ground-truth HTML table.

    Empty when the HTML holds no table. ``max_questions`` bounds the ``cell`` questions; the
    other kinds add at most one per table (``count``) or per unit-bearing column (``unit``).
    """
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown question kinds {sorted(unknown)}; use {KINDS}")
    grid = _grid(html)
    if grid is None:
        return []
    pairs: list[dict[str, str]] = []
    if "cell" in kinds:
        pairs += _spread(_cell_questions(grid, html), max_questions)
    if "count" in kinds:
        pairs += _count_questions(grid)
    if "unit" in kinds:
        pairs += _unit_questions(grid)
    return pairs
