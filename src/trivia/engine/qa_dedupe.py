"""Near-duplicate questions: the same question asked twice in other words is asked once.

Questions are compared on normalised text (`normalise_question`: NFKC, lowercase, no
punctuation, no articles, no filler such as "what is", "please", "in the table"). Two questions
are near-duplicates when

- their normalised words are the same, in any order and with plural endings ignored ("What's
  the p-value for gender?" / "What is the p value of Gender?"), whatever the answers; or
- their answers are the same value (QA tokens equal) **and** one question's words are all among
  the other's ("hazard ratio of males" / "hazard ratio for male patients").

Words compare exactly (after the plural ending), never by edit distance: table labels differ in
one character ("G1" / "G2", "abc" / "abcd") and still name different rows. So "hazard ratio of
male" and "hazard ratio of ≤69" stay two questions although both answers are 1.000: each has a
word the other lacks. The first of each group is kept. Pure: no I/O.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from trivia.engine.qa_candidate import Candidate
from trivia.metrics.qa_f1 import tokenize

_FILLER = frozenset(
    {"what", "whats", "which", "who", "whom", "whose", "when", "where", "how", "please", "tell"}
    | {"is", "are", "was", "were", "does", "do", "did", "me", "give", "value", "reported"}
    | {"listed", "shown", "given", "stated", "for", "of", "in", "to", "by", "with", "row"}
    | {"column", "entry", "cell", "s"}
)
_FILLER_PHRASE = re.compile(r"\b(according to|in the table|from the table|the table)\b")


def _is_punctuation(char: str) -> bool:
    return char in string.punctuation or unicodedata.category(char).startswith("P")


def normalise_question(question: str) -> str:
    """The words of a question that say what it asks about, lowercased, in their order.

    Punctuation separates words ("p-value" is "p value", "male's" is "male"), unlike in QA-F1.
    """
    spaced = "".join(" " if _is_punctuation(ch) else ch for ch in question.lower())
    tokens = tokenize(_FILLER_PHRASE.sub(" ", spaced))
    return " ".join(t for t in tokens if t not in _FILLER)


def _stem(word: str) -> str:
    """The word without a plural ending ("males" → "male", "classes" → "class")."""
    if len(word) <= 3 or any(ch.isdigit() for ch in word):
        return word
    if word.endswith(("sses", "xes", "ches", "shes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


@dataclass(frozen=True, slots=True)
class _Seen:
    words: frozenset[str]
    answer: tuple[str, ...]

    @classmethod
    def of(cls, candidate: Candidate) -> _Seen:
        words = frozenset(_stem(w) for w in normalise_question(candidate.question).split())
        return cls(words, tuple(tokenize(candidate.answer)))

    def same_words(self, other: _Seen) -> bool:
        return self.words == other.words

    def duplicates(self, other: _Seen) -> bool:
        if self.same_words(other):
            return True
        if self.answer != other.answer or not self.words or not other.words:
            return False
        return self.words <= other.words or other.words <= self.words


def near_duplicates(first: Candidate, second: Candidate) -> bool:
    """Whether two candidates ask the same question (see the module docstring)."""
    return _Seen.of(first).duplicates(_Seen.of(second))


def dedupe(
    candidates: Sequence[Candidate], *, earlier: Sequence[Candidate] = (), exact_only: bool = False
) -> tuple[list[Candidate], list[Candidate]]:
    """(kept, duplicates): `candidates` without near-duplicates of each other or of `earlier`.

    `earlier` are candidates kept before (in previous rounds); they are not returned. With
    `exact_only`, only questions with the same normalised words count (a cheap pass before
    verification, since the verifier would judge them alike).
    """
    seen = [_Seen.of(c) for c in earlier]
    kept: list[Candidate] = []
    duplicates: list[Candidate] = []
    for candidate in candidates:
        key = _Seen.of(candidate)
        same = key.same_words if exact_only else key.duplicates
        if any(same(s) for s in seen):
            duplicates.append(candidate)
            continue
        seen.append(key)
        kept.append(candidate)
    return kept, duplicates
