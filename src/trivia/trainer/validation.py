"""Validation scores: TEDS and TEDS-S of a completion against a row's ground-truth HTML.

Each score comes raw and normalised. OTSL cannot express ``<thead>``/``<th>``, so a perfect
recognition scores below 1 raw against a ground truth with a header section; the normalised
pair puts both sides through `normalize_html` first, the step `trivia eval` applies too.

A validation row's ground truth is its ``solution`` or, failing that, the HTML of its last
assistant turn (ms-swift does not copy the assistant turn into ``solution``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from trivia.metrics import TableTooLarge, teds
from trivia.tables import detect_format, html_to_table, normalize_html, to_html
from trivia.tables.otsl import OTSL_TAG


@dataclass(frozen=True, slots=True)
class TableScores:
    """TEDS (structure and content) and TEDS-S (structure only), raw and normalised."""

    teds: float
    teds_structure: float
    teds_norm: float
    teds_structure_norm: float


def table_scores(completion: str, solution: str) -> TableScores | None:
    """Score a completion in OTSL or HTML against ground-truth HTML; None if too large to score."""
    html = to_html(completion)
    html_norm, solution_norm = normalize_html(html), normalize_html(solution)
    try:
        return TableScores(
            teds(html, solution),
            teds(html, solution, structure_only=True),
            teds(html_norm, solution_norm),
            teds(html_norm, solution_norm, structure_only=True),
        )
    except TableTooLarge:
        return None


def mean_scores(scores: Sequence[TableScores | None]) -> TableScores | None:
    """The mean over the scored completions; None when none was scored."""
    scored = [s for s in scores if s is not None]
    if not scored:
        return None
    return TableScores(
        *(sum(getattr(s, f.name) for s in scored) / len(scored) for f in fields(TableScores))
    )


def _table_html(text: str) -> str | None:
    """`text` (HTML or OTSL) as HTML when it holds a table with at least one cell."""
    if detect_format(text) == "otsl" and not OTSL_TAG.search(text):
        return None  # prose, not a table
    html = to_html(text)
    table = html_to_table(html)
    return html if table is not None and table.cells else None


def ground_truth(row: Mapping[str, Any]) -> str | None:
    """The row's ground-truth table: ``solution``, else its last assistant turn; None if neither.

    A placeholder assistant turn (no table, or a table without cells) is no ground truth.
    """
    solution = row.get("solution")
    if isinstance(solution, str) and solution.strip():
        return solution
    for message in reversed(row.get("messages") or []):
        if isinstance(message, Mapping) and message.get("role") == "assistant":
            content = message.get("content")
            return _table_html(content) if isinstance(content, str) else None
    return None


def with_ground_truth(row: dict[str, Any]) -> dict[str, Any]:
    """The row with ``solution`` filled from its assistant turn when it has none (a copy)."""
    if row.get("solution"):
        return row
    truth = ground_truth(row)
    return row if truth is None else {**row, "solution": truth}
