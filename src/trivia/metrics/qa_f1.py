"""QA-F1: how well an answer given from a recognised table matches the known answer.

The training reward is the mean of this score over an image's questions, so its definition is a
contract. ``qa_f1(prediction, answer)`` is computed in four steps:

1. **Extract** (``extract_answer``), from both strings: delete every ``<think>…</think>`` span
   (non-greedy, across lines); if what is left contains ``<answer>…</answer>``, keep the content
   of the last such span; strip surrounding whitespace.
2. **Unanswerable**: NFKC-normalise the extracted prediction, lowercase it, collapse whitespace
   runs to one space and strip leading/trailing spaces and periods. If the result equals or starts
   with ``not answerable``, ``unanswerable`` or ``无法回答``, the score is 0.0 whatever the answer
   is: a refusal never earns reward.
3. **Tokens** (``tokenize``): NFKC; lowercase; delete every character in ``string.punctuation``
   or whose Unicode category starts with ``P`` (so "1.5–2.0" and "1.5-2.0" both become "1520",
   while symbols such as "≤" (Sm) stay); replace the whole words ``a``, ``an``, ``the`` with a
   space; split on whitespace; inside each word every CJK character (kana, CJK ideographs and
   compatibility ideographs, Hangul syllables) is a token of its own and the runs of other
   characters between them stay one token each.
4. **F1**: if either token list is empty the score is 1.0 when both are, else 0.0. Otherwise, with
   ``c`` the size of the multiset intersection of the two lists, the score is 0.0 when ``c == 0``
   and ``2PR / (P + R)`` with ``P = c / |prediction|`` and ``R = c / |answer|`` otherwise.

Unlike a character count over a segmented string, whole numbers are compared as whole tokens:
"1,823" against "1,832" scores 0.0, not 1.0.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter

__all__ = ["extract_answer", "is_unanswerable", "qa_f1", "tokenize"]

_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_WHITESPACE = re.compile(r"\s+")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_CJK_RANGES = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_CJK_OR_RUN = re.compile(f"[{_CJK_RANGES}]|[^{_CJK_RANGES}]+")
_REFUSALS = ("not answerable", "unanswerable", "无法回答")
_ASCII_PUNCTUATION = frozenset(string.punctuation)


def extract_answer(text: str) -> str:
    """Return the answer a model gave, without its reasoning or answer tags (step 1)."""
    without_thinking = _THINK.sub("", text)
    answers = _ANSWER.findall(without_thinking)
    if answers:
        return answers[-1].strip()
    return without_thinking.strip()


def is_unanswerable(prediction: str) -> bool:
    """Whether an extracted prediction declares the question unanswerable (step 2)."""
    normalised = _WHITESPACE.sub(" ", unicodedata.normalize("NFKC", prediction).lower())
    normalised = normalised.strip(" .")
    return normalised.startswith(_REFUSALS)


def _is_punctuation(char: str) -> bool:
    return char in _ASCII_PUNCTUATION or unicodedata.category(char).startswith("P")


def tokenize(text: str) -> list[str]:
    """Split text into the tokens QA-F1 compares (step 3); CJK characters count one by one."""
    lowered = unicodedata.normalize("NFKC", text).lower()
    without_punctuation = "".join(char for char in lowered if not _is_punctuation(char))
    without_articles = _ARTICLES.sub(" ", without_punctuation)
    return [token for word in without_articles.split() for token in _CJK_OR_RUN.findall(word)]


def qa_f1(prediction: str, answer: str) -> float:
    """Token F1 of a model's answer against the known answer, in [0, 1] (see module docstring)."""
    predicted = extract_answer(prediction)
    if is_unanswerable(predicted):
        return 0.0
    predicted_tokens = tokenize(predicted)
    answer_tokens = tokenize(extract_answer(answer))
    if not predicted_tokens or not answer_tokens:
        return 1.0 if predicted_tokens == answer_tokens else 0.0
    common = sum((Counter(predicted_tokens) & Counter(answer_tokens)).values())
    if common == 0:
        return 0.0
    precision = common / len(predicted_tokens)
    recall = common / len(answer_tokens)
    return 2 * precision * recall / (precision + recall)
