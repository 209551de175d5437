"""A deterministic stand-in for the answering LLM: find the question's row and column in the table.

This is a heuristic, not a language model. It reads questions of the shapes that questions
generated from table cells take, "What is the <column header> of <row header>?" and "What is
the value in row <row header>, column <column header>?", and for any other question looks for
a row and a column whose labels share words with it. It answers with the text of the cell at
that row and column, or "Not answerable" when no row and column match well enough or the cell
is empty. It is meant for running the reward stack without an LLM (demos, tests, CPU machines):
a correct table gives correct answers, and a table with a cell blanked, changed or misplaced
gives a wrong answer for that cell, so rewards move the right way. It understands nothing:
paraphrases, arithmetic, comparisons and multi-cell answers are beyond it.

How a cell is chosen: the question is split into a row part and a column part (every split a
template allows is tried). A cell is a candidate answer when some cell to its left in its row
matches the row part and some cell above it in its column matches the column part; matching is
token F1 between the part and the cell's text (lowercased words and symbols, NFKC), and each
side must reach `MIN_MATCH`. The candidate with the highest sum wins; ties go to the topmost,
then the leftmost.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache

from trivia.qa.prompts import NOT_ANSWERABLE, parse_messages
from trivia.tables import detect_format, html_to_table, otsl_to_table

DESCRIPTION = (
    "lookup: a deterministic heuristic, not a language model. It answers a question about the "
    "table in the prompt by finding the row and column whose labels match the question's words "
    "and returning that cell's text, or 'Not answerable'."
)

MIN_MATCH = 0.5

_WORD = re.compile(r"\w+|[^\w\s]")  # words, and each symbol on its own (≥ is not <)
_SPACES = re.compile(r"\s+")
# Templates: each gives the row part and the column part of a question.
_ROW_COLUMN = re.compile(
    r"^\s*what(?:'s| is| was)\s+the\s+value\s+in\s+row\s+(?P<row>.+?)\s*,\s*column\s+(?P<col>.+?)"
    r"\s*\??\s*$",
    re.IGNORECASE | re.DOTALL,
)
_COLUMN_OF_ROW = re.compile(
    r"^\s*what(?:'s| is| was| are| were)\s+the\s+(?P<rest>.+?)\s*\??\s*$",
    re.IGNORECASE | re.DOTALL,
)
_OF = re.compile(r"\s+(?:of|for|in)\s+", re.IGNORECASE)
_Score = Callable[[frozenset[str], frozenset[str]], float]
_STOPWORDS = frozenset(
    {"a", "an", "and", "are", "column", "for", "in", "is", "it", "of", "row", "the", "value"}
    | {"was", "were", "what", "which", "?", ",", "'"}
)


def _tokens(text: str) -> frozenset[str]:
    return frozenset(_WORD.findall(unicodedata.normalize("NFKC", text).lower()))


def _f1(part: frozenset[str], cell: frozenset[str]) -> float:
    common = len(part & cell)
    if not common:
        return 0.0
    return 2 * common / (len(part) + len(cell))


def _coverage(question: frozenset[str], cell: frozenset[str]) -> float:
    """Share of the cell's content words that the question contains (for free-form questions)."""
    content = cell - _STOPWORDS
    if not content:
        return 0.0
    return len(question & content) / len(content)


@dataclass(frozen=True, slots=True)
class _Index:
    """A parsed table: its text grid, each slot's tokens, and where each token occurs."""

    grid: tuple[tuple[str, ...], ...]
    tokens: tuple[tuple[frozenset[str], ...], ...]
    where: Mapping[str, tuple[tuple[int, int], ...]]


_INDEX_LOCK = threading.Lock()


def _index(table: str) -> _Index | None:
    """The parsed table, built once: concurrent questions about one table wait for one build."""
    with _INDEX_LOCK:
        return _build_index(table)


@lru_cache(maxsize=32)
def _build_index(table: str) -> _Index | None:
    """The parsed table, cached: the ~30 questions of one table share one parse.

    Raises `GridTooLarge` when the table's spans expand past `MAX_GRID_SLOTS`.
    """
    if detect_format(table) == "html":
        parsed = html_to_table(table)
        if parsed is None:
            return None
    else:
        parsed = otsl_to_table(table)
    # A spanning cell's slots share one cleaned text and one token set.
    clean = cache(lambda text: _SPACES.sub(" ", text).strip())
    tokens_of = cache(_tokens)
    grid = tuple(tuple(clean(text) for text in row) for row in parsed.text_grid())
    tokens = tuple(tuple(tokens_of(text) for text in row) for row in grid)
    where: dict[str, list[tuple[int, int]]] = {}
    for r, row in enumerate(tokens):
        for c, cell in enumerate(row):
            for token in cell:
                where.setdefault(token, []).append((r, c))
    return _Index(grid, tokens, {token: tuple(slots) for token, slots in where.items()})


def _interpretations(question: str) -> list[tuple[str, str]]:
    """(row part, column part) readings of `question` that a template allows; [] when none."""
    match = _ROW_COLUMN.match(question)
    if match:
        return [(match["row"], match["col"])]
    match = _COLUMN_OF_ROW.match(question)
    if not match:
        return []
    rest = match["rest"]
    return [(rest[sep.end() :], rest[: sep.start()]) for sep in _OF.finditer(rest)]


def _best_per_line(
    index: _Index, part: frozenset[str], score: _Score, *, by_row: bool
) -> dict[int, tuple[float, int]]:
    """For each row (or column), its best-matching slot: line -> (match, position in line)."""
    best: dict[int, tuple[float, int]] = {}
    seen: set[tuple[int, int]] = set()
    for token in part:
        for slot in index.where.get(token, ()):
            if slot in seen:
                continue
            seen.add(slot)
            r, c = slot
            value = score(part, index.tokens[r][c])
            if value < MIN_MATCH:
                continue
            line, position = (r, c) if by_row else (c, r)
            old = best.get(line)
            if old is None or value > old[0] or (value == old[0] and position < old[1]):
                best[line] = (value, position)
    return best


def _locate(
    index: _Index, row_part: frozenset[str], col_part: frozenset[str], score: _Score
) -> tuple[float, int, int] | None:
    """The best (score, row, column) for a row part and a column part, or None."""
    rows = _best_per_line(index, row_part, score, by_row=True)
    cols = _best_per_line(index, col_part, score, by_row=False)
    best: tuple[float, int, int] | None = None
    for r, (row_match, label_col) in rows.items():
        for c, (col_match, label_row) in cols.items():
            if c <= label_col or r <= label_row:
                continue
            total = row_match + col_match
            if best is None or total > best[0] or (total == best[0] and (r, c) < best[1:]):
                best = (total, r, c)
    return best


def answer_question(table: str, question: str) -> str:
    """The text of the cell that `question` points at in `table`, or "Not answerable".

    `table` is HTML or OTSL. Pure and deterministic; see the module doc for what it can answer.
    Raises `GridTooLarge` for a table whose spans expand past `MAX_GRID_SLOTS`.
    """
    index = _index(table)
    if index is None or not index.grid:
        return NOT_ANSWERABLE
    best: tuple[float, int, int] | None = None
    for row_text, col_text in _interpretations(question):
        found = _locate(index, _tokens(row_text), _tokens(col_text), _f1)
        if found is not None and (best is None or found[0] > best[0]):
            best = found
    if best is None:  # free-form: both labels must be mentioned somewhere in the question
        words = _tokens(question) - _STOPWORDS
        best = _locate(index, words, words, _coverage)
    if best is None:
        return NOT_ANSWERABLE
    _, r, c = best
    return index.grid[r][c] or NOT_ANSWERABLE


def answer_messages(messages: Sequence[Mapping[str, object]]) -> str:
    """The reply to chat messages built by `build_messages`: `<answer>…</answer>`."""
    try:
        table, question = parse_messages(messages)
    except ValueError:
        return f"<answer>{NOT_ANSWERABLE}</answer>"
    return f"<answer>{answer_question(table, question)}</answer>"
