"""Checks on the datasets a training run reads, made before the run starts.

A validation row without a ground truth (no ``solution`` and no table in its last assistant
turn) yields no TEDS, silently; a training set where many rows have no questions gives the
policy no signal for them. Both are refused up front, naming what is wrong.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from trivia.dataset.jsonl import json_lines
from trivia.trainer.validation import ground_truth


class DatasetError(ValueError):
    """A dataset the run would read cannot give the signal it is meant to."""


def local_files(datasets: Iterable[str]) -> Iterator[Path]:
    """The local JSONL files among ms-swift dataset arguments (``path`` or ``path#count``)."""
    for spec in datasets:
        path = Path(spec.split("#", 1)[0])
        if path.suffix == ".jsonl" and path.is_file():
            yield path


def check_validation_file(path: Path) -> None:
    """Raise `DatasetError` naming the first row (file:line) that has no ground-truth table."""
    for number, row in json_lines(path, DatasetError):
        if not isinstance(row, dict) or ground_truth(row) is None:
            raise DatasetError(
                f"{path}:{number}: validation row has no ground truth: give it a "
                "`solution` (HTML) or the table as its last assistant turn"
            )


def check_no_question_share(rows: int, without_questions: int, limit: float) -> None:
    """Raise `DatasetError` when more than `limit` of the training rows have no questions."""
    if rows and without_questions / rows > limit:
        raise DatasetError(
            f"{without_questions} of {rows} training rows ({without_questions / rows:.1%}) have "
            f"no qa_pairs, more than the allowed {limit:.0%} (TRIVIA_MAX_NO_QUESTION_SHARE): "
            "those rows give no reward signal. Add questions or drop the rows."
        )
