"""Shared data for the QA tests: the PubTabNet ground truths and questions built from them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trivia.tables import html_to_table

SAMPLE_GT = Path(__file__).resolve().parents[2] / "examples" / "pubtabnet" / "sample_gt.json"


def _cell_questions(html: str) -> list[tuple[str, str, int, int]]:
    """(question, answer, row, col) for body cells whose row and column labels are unique.

    Labels are the first cell of the row and the top cell of the column, in both question
    templates; built here independently of the lookup answerer, so tests can't be circular.
    """
    table = html_to_table(html)
    assert table is not None
    grid = [[" ".join(text.split()) for text in row] for row in table.text_grid()]
    row_labels = [row[0] for row in grid]
    col_labels = grid[0]
    out = []
    for r in range(1, len(grid)):
        for c in range(1, len(grid[0])):
            row, col, answer = row_labels[r], col_labels[c], grid[r][c]
            if not (row and col and answer):
                continue
            if row_labels.count(row) > 1 or col_labels.count(col) > 1:
                continue
            out.append((f"What is the {col} of {row}?", answer, r, c))
            out.append((f"What is the value in row {row}, column {col}?", answer, r, c))
    return out


@pytest.fixture(scope="session")
def gt_tables() -> dict[str, str]:
    """name -> ground-truth HTML of the 20 PubTabNet samples."""
    data = json.loads(SAMPLE_GT.read_text(encoding="utf-8"))
    return {name: entry["html"] for name, entry in data.items()}


@pytest.fixture(scope="session")
def cell_questions():
    """The question builder above, as a fixture (test folders here are not packages)."""
    return _cell_questions
