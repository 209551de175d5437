"""Validation scores: TEDS and TEDS-S of a completion against a row's ground-truth HTML."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from trivia.metrics import TableTooLarge, teds
from trivia.tables import to_html

__all__ = ["TableScores", "mean_scores", "table_scores"]


@dataclass(frozen=True, slots=True)
class TableScores:
    """TEDS (structure and content) and TEDS-S (structure only) of one completion."""

    teds: float
    teds_structure: float


def table_scores(completion: str, solution: str) -> TableScores | None:
    """Score a completion in OTSL or HTML against ground-truth HTML; None if too large to score."""
    html = to_html(completion)
    try:
        return TableScores(teds(html, solution), teds(html, solution, structure_only=True))
    except TableTooLarge:
        return None


def mean_scores(scores: Sequence[TableScores | None]) -> TableScores | None:
    """The mean over the scored completions; None when none was scored."""
    scored = [s for s in scores if s is not None]
    if not scored:
        return None
    return TableScores(
        sum(s.teds for s in scored) / len(scored),
        sum(s.teds_structure for s in scored) / len(scored),
    )
