"""A proposed question-answer pair and the reasons one is dropped on the way to the dataset.

Every stage of `trivia data qa` either keeps a candidate or names why it went; the names below
are the keys of the per-image and overall drop counts in the run's summary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

#: Why candidates (or, for ``bad_json``, whole generator replies) were dropped, in pipeline order.
DROP_REASONS: Final[dict[str, str]] = {
    "bad_json": "a generator reply held no readable JSON list of questions (counts replies)",
    "malformed": "an item without a question or an answer",
    "arithmetic": "needs arithmetic or counting (sum, difference, how many more, average of…)",
    "comparison": "needs a comparison (highest, lower than, most…)",
    "layout": "refers to the layout (third row, last column, top, left…)",
    "long_answer": "the answer is longer than a short value",
    "multi_value": "the answer is a list of values, not one",
    "duplicate": "a near-duplicate of an earlier question",
    "blind_answerable": "the verifier answered it correctly without the image",
    "wrong": "the verifier's answer with the image does not match the generator's",
    "surplus": "verified, but not among the diverse subset kept for the image",
}


@dataclass(frozen=True, slots=True)
class Location:
    """The cell of the consensus recognition that holds an answer: its top-left slot and spans."""

    row: int
    col: int
    rowspan: int = 1
    colspan: int = 1

    @property
    def rows(self) -> range:
        return range(self.row, self.row + self.rowspan)

    @property
    def cols(self) -> range:
        return range(self.col, self.col + self.colspan)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One question about a table image with the generator's answer, as proposed in `round`."""

    question: str
    answer: str
    round: int = 0
