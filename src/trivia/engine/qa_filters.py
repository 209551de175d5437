"""Which proposed questions cannot teach table recognition, by their wording and their answer.

The reward asks a text-only model to answer from the recognised table, so a good question has
one short answer read from one cell. Questions are dropped when they need

- ``arithmetic``: sums, differences, averages, "how many more", counting rows or entries;
- ``comparison``: superlatives and comparatives ("highest", "lower than", "the most");
- ``layout``: positions instead of labels ("third row", "last column", "top", "left");

and answers are dropped when ``long_answer`` (more than `MAX_ANSWER_WORDS` words or
`MAX_ANSWER_CHARS` characters) or ``multi_value`` (a list joined by ";", " and ", " or ", line
breaks or comma-space, as in "12, 15 and 18").

A trigger that also occurs in the table's own text ("Total" as a row label, "Maximum" as a
column header, "first line" in "First line treatment") quotes a label rather than asks for an
operation, so with `table_text` given it does not count; for "total of" and "average of the"
the word alone must occur. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

MAX_ANSWER_WORDS: Final = 8
MAX_ANSWER_CHARS: Final = 60

_ORDINALS = (
    r"first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|"
    r"penultimate|last|\d+(?:st|nd|rd|th)"
)

#: (reason, pattern) in the order they are tried; patterns match lowercased question text.
QUESTION_RULES: Final[tuple[tuple[str, re.Pattern[str]], ...]] = tuple(
    (reason, re.compile(pattern))
    for reason, pattern in (
        ("arithmetic", r"\b(sum|sums|summed|difference|differences|subtract\w*|add(?:ed)? up)\b"),
        ("arithmetic", r"\b(plus|minus|multipl\w+|divided|product of|ratio between)\b"),
        ("arithmetic", r"\b(?P<key>average|mean|median) of (?:all|the)\b"),
        ("arithmetic", r"\b(altogether|combined|in total)\b"),
        ("arithmetic", r"\b(?P<key>total) (?:number )?of\b"),
        ("arithmetic", r"\bhow (?:many|much) (?:more|less|fewer|higher|lower|greater)\b"),
        (
            "arithmetic",
            r"\bhow many (?:rows|columns|cells|entries|items|categories|variables|groups|"
            r"values|records|lines)\b",
        ),
        (
            "arithmetic",
            r"\b(percentage (?:change|increase|decrease)|increase from|decrease from)\b",
        ),
        (
            "comparison",
            r"\b(highest|lowest|largest|smallest|biggest|greatest|maximum|minimum|max|min|"
            r"best|worst|longest|shortest|oldest|youngest)\b",
        ),
        (
            "comparison",
            r"\b(higher|lower|greater|larger|smaller|bigger|more|less|fewer|longer|shorter|"
            r"older|younger) than\b",
        ),
        ("comparison", r"\bthe (most|least)\b"),
        ("comparison", r"\b(compare[sd]?|comparing|comparison|rank(?:ed|s)?|exceeds?)\b"),
        ("layout", rf"\b({_ORDINALS}) (?:\w+ )?(?:row|column|col|cell|line|entry|header)s?\b"),
        ("layout", rf"\b(?:row|column|col|line) (?:number )?(\d+|{_ORDINALS})\b"),
        (
            "layout",
            r"\b(top|bottom|leftmost|rightmost|left|right|above|below|next to|adjacent|"
            r"preceding|following|beneath|underneath)\b",
        ),
        ("layout", r"\b(in|of) (?:the|this) (row|column|cell|header)\b"),
    )
)

_LIST_SEPARATORS = re.compile(r";|\n|, | and | or | & ")
_WORD = re.compile(r"\w+")


def _quoted_in_table(trigger: str, table_text: str) -> bool:
    return bool(table_text) and re.search(rf"\b{re.escape(trigger)}\b", table_text) is not None


def _question_reason(question: str, table_text: str) -> str | None:
    lowered = question.lower()
    for reason, pattern in QUESTION_RULES:
        for match in pattern.finditer(lowered):
            trigger = match["key"] if "key" in pattern.groupindex else match[0]
            if not _quoted_in_table(trigger, table_text):
                return reason
    return None


def _answer_reason(answer: str, table_text: str) -> str | None:
    text = answer.strip()
    if len(text) > MAX_ANSWER_CHARS or len(_WORD.findall(text)) > MAX_ANSWER_WORDS:
        return "long_answer"
    if _LIST_SEPARATORS.search(text) and text.lower() not in table_text:
        return "multi_value"
    return None


def rejection_reason(question: str, answer: str, *, table_text: Iterable[str] = ()) -> str | None:
    """Why this question-answer pair should not be asked, or None when it may be.

    `table_text` is the text of the table's cells (any recognition of it), used to tell quoted
    labels from operations and cell values that contain a separator from lists of values.
    """
    text = "\n".join(t.lower() for t in table_text if t)
    return _question_reason(question, text) or _answer_reason(answer, text)
