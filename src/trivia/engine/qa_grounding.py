"""Where in the table an answer lies, read from the consensus of the model's recognitions.

The K recognitions of an image (from `trivia data sample`) disagree where the model is unsure;
the one with the highest mean TEDS to the others (`consensus_index`) is the best single guess
at the table, so answers are located in it. `locate_answer` finds the cell whose text is the
answer (QA tokens equal, or equal once joined: "Medium-High/Medium"; an answer of symbols only,
such as "***", by its text; else token F1 ≥ `MIN_ANSWER_F1`); when several cells match
("1.000" in many rows), the question's words decide: the cell whose row labels (the cells to
its left) and column headers (the cells above it) share most words with the question wins,
then the topmost, then the leftmost. An answer found nowhere has no location: the recognition
missed or misread it. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from trivia.engine.qa_candidate import Location
from trivia.metrics import TableTooLarge, pairwise_teds
from trivia.metrics.qa_f1 import qa_f1, tokenize
from trivia.tables import Table, detect_format, html_to_table, to_html

#: Token F1 from which a cell's text counts as the answer when no cell matches it exactly.
MIN_ANSWER_F1: Final = 0.8
_OTSL_CELL = re.compile(r"<(?:fcel|ecel)>")


def consensus_index(outputs: Sequence[str], valid: Sequence[bool] | None = None) -> int | None:
    """The index of the recognition with the highest mean TEDS to the other recognitions.

    Outputs are OTSL or HTML. Only valid outputs (all, when `valid` is None or none is valid)
    compete, and only against each other; ties go to the earliest. None when no output holds a
    table. Tables too large to score leave the first competing output as the consensus.
    """
    candidates = [i for i, ok in enumerate(valid or []) if ok] or list(range(len(outputs)))
    present = [i for i in candidates if _as_table(outputs[i]) is not None]
    if len(present) <= 2:  # with two, both have the same mean: the earliest wins
        return present[0] if present else None
    try:
        scores = pairwise_teds([to_html(outputs[i]) for i in present])
    except TableTooLarge:
        return present[0]
    means = [(sum(row) - row[k]) / (len(row) - 1) for k, row in enumerate(scores)]
    return present[max(range(len(present)), key=lambda k: (means[k], -k))]


def _as_table(recognition: str) -> Table | None:
    """The recognition's table; None for text with no table markup (OTSL without a cell tag)."""
    if detect_format(recognition) == "otsl" and not _OTSL_CELL.search(recognition):
        return None
    table = html_to_table(to_html(recognition))
    return table if table is not None and table.cells else None


@dataclass(frozen=True, slots=True)
class Grounding:
    """A recognised table prepared for locating answers: its cells and text grid."""

    table: Table
    grid: tuple[tuple[str, ...], ...]
    cell_tokens: tuple[tuple[str, ...], ...]

    @property
    def n_rows(self) -> int:
        return self.table.n_rows

    @property
    def n_cols(self) -> int:
        return self.table.n_cols

    def texts(self) -> list[str]:
        """Every cell's text, for the question filters."""
        return [cell.text for cell in self.table.cells]


def ground(recognition: str) -> Grounding | None:
    """The recognition (OTSL or HTML) parsed for `locate_answer`; None when it holds no table."""
    table = _as_table(recognition)
    if table is None:
        return None
    grid = tuple(tuple(row) for row in table.text_grid())
    tokens = tuple(tuple(tokenize(cell.text)) for cell in table.cells)
    return Grounding(table, grid, tokens)


def _context_words(grounding: Grounding, row: int, col: int) -> set[str]:
    words: set[str] = set()
    for text in grounding.grid[row][:col]:
        words.update(tokenize(text))
    for r in range(row):
        words.update(tokenize(grounding.grid[r][col]))
    return words


def _matches(grounding: Grounding, answer: str) -> list[tuple[float, int]]:
    """(score, cell index) of the cells whose text is the answer, or nearly."""
    wanted = tokenize(answer)
    if not wanted:  # an answer of symbols only ("***", "–") must be the cell's text exactly
        plain = answer.strip()
        return [(1.0, i) for i, c in enumerate(grounding.table.cells) if c.text.strip() == plain]
    joined = "".join(wanted)
    exact = [
        (1.0, i)
        for i, tokens in enumerate(grounding.cell_tokens)
        if list(tokens) == wanted or "".join(tokens) == joined
    ]
    if exact:
        return exact
    scored = ((qa_f1(cell.text, answer), i) for i, cell in enumerate(grounding.table.cells))
    return [(score, i) for score, i in scored if score >= MIN_ANSWER_F1]


def locate_answer(grounding: Grounding, answer: str, question: str = "") -> Location | None:
    """The cell of the table that holds `answer` (see the module docstring), or None."""
    matches = _matches(grounding, answer)
    if not matches:
        return None
    asked = set(tokenize(question)) - set(tokenize(answer))

    def rank(match: tuple[float, int]) -> tuple[float, int, int, int]:
        score, i = match
        cell = grounding.table.cells[i]
        overlap = len(asked & _context_words(grounding, cell.row, cell.col))
        return (score, overlap, -cell.row, -cell.col)

    cell = grounding.table.cells[max(matches, key=rank)[1]]
    return Location(cell.row, cell.col, cell.rowspan, cell.colspan)
