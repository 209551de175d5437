"""QA-F1: how well an answer given from a recognised table matches the known answer.

The training reward is the mean of this score over an image's questions, so its definition is a
contract. ``qa_f1(prediction, answer)`` is computed in five steps:

1. **Extract** (``extract_answer``), from both strings: delete every ``<think>…</think>`` span
   (non-greedy, across lines); if what is left contains ``<answer>…</answer>``, keep the content
   of the last such span; else, if it contains an unclosed ``<answer>``, keep the text after the
   last one; strip surrounding whitespace. An unclosed tag is an answer only because the reward
   scores finished replies alone (``finish_reason`` "stop"): a reply cut at ``max_tokens`` is a
   QA failure (``QAError``, kind "truncated"), never scored.
2. **Unanswerable**: NFKC-normalise the extracted prediction, lowercase it, collapse whitespace
   runs to one space and strip leading/trailing spaces and periods. If the result equals or starts
   with ``not answerable``, ``unanswerable`` or ``无法回答``, the score is 0.0 whatever the answer
   is: a refusal never earns reward.
3. **Tokens** (``tokenize``): NFKC; lowercase; numbers are read by the numeric rule below; then
   every other character in ``string.punctuation`` or whose Unicode category starts with ``P`` is
   deleted (symbols such as "≤" (Sm) stay), except that punctuation between two digits becomes a
   space (``1:2`` is two tokens, never ``12``); the whole words ``a``, ``an``, ``the`` become a
   space; the text is split on whitespace; inside each word every CJK character (kana, CJK
   ideographs and compatibility ideographs, Hangul syllables) is a token of its own and the runs
   of other characters between them stay one token each.
4. **F1** against one known answer: if either token list is empty the score is 1.0 when both
   are, else 0.0. Otherwise, with ``c`` the size of the multiset intersection of the two lists,
   the score is 0.0 when ``c == 0`` and ``2PR / (P + R)`` with ``P = c / |prediction|`` and
   ``R = c / |answer|`` otherwise.
5. **Aliases**: the known answer may be a list of accepted answers; the score is the best F1
   over them (as SQuAD scores several gold answers).

**The numeric rule.** A table that drops a minus sign or a decimal point must not earn full
reward, so the marks that change a number's value stay inside it:

* Unicode minus and dashes (U+2010–U+2015, U+2212, U+FE58, U+FE63, U+FF0D) are read as ``-``.
* A number is a run of digits joined by ``.``, ``,``, ``/`` or ``-`` (each between two digits),
  with an optional sign and an optional percent sign: ``-5``, ``+5``, ``1.5``, ``10/20``,
  ``2019-2020``, ``5%``. A ``-`` or ``+`` right before the first digit is a sign unless a letter
  or digit comes before it (``covid-19`` stays the word ``covid19``); a ``.`` right before the
  first digit and after no letter or digit reads as ``0.`` (``.5`` is ``0.5``); a ``%`` after the
  last digit belongs to the number, spaces between them allowed (``5 %`` is ``5%``).
* Commas: a number whose commas all group thousands (``1,234``, ``12,345,678.9``: one to three
  digits, then groups of exactly three) loses them, so ``1,234`` ≡ ``1234``; a number with one
  comma that does not group thousands uses it as its decimal mark (``3,5`` ≡ ``3.5``); other
  commas stay as written (``1,2,3``).
* Nothing else is normalised: ``1.5`` and ``1.50`` are different tokens, as are ``5`` and ``+5``.

Examples (prediction, answer → score): ``-5``/``5`` → 0; ``−5``/``-5`` → 1; ``1.5``/``15`` → 0;
``5%``/``5`` → 0; ``10/20``/``1020`` → 0; ``1,234``/``1234`` → 1; ``1.5–2.0``/``1.5-2.0`` → 1;
``-12.5 kg``/``-12.5`` → 2/3; ``增长-5%``/``增长 -5%`` → 1; ``１，２３４人``/``1234人`` → 1.

Unlike a character count over a segmented string, whole numbers are compared as whole tokens:
"1,823" against "1,832" scores 0.0, not 1.0.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from collections.abc import Sequence

_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_WHITESPACE = re.compile(r"\s+")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_CJK_RANGES = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_CJK = re.compile(f"[{_CJK_RANGES}]")
_CJK_OR_RUN = re.compile(f"[{_CJK_RANGES}]|[^{_CJK_RANGES}]+")
_REFUSALS = ("not answerable", "unanswerable", "无法回答")
_ASCII_PUNCTUATION = frozenset(string.punctuation)

_DASHES = str.maketrans(
    dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d", "-")
)
_NUMBER = re.compile(r"([-+]?)(\.?)([0-9]+(?:[.,/-][0-9]+)*)(?:\s*(%))?")
_THOUSANDS = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?")
_ONE_COMMA = re.compile(r"[0-9]+,[0-9]+")
# Marks kept inside a number stand in as private-use characters (neither punctuation nor
# word characters) until punctuation has been deleted.
_KEEP = {".": "\ue000", ",": "\ue001", "/": "\ue002", "-": "\ue003", "+": "\ue004", "%": "\ue005"}
_PROTECT = str.maketrans(_KEEP)
_RESTORE = str.maketrans({v: k for k, v in _KEEP.items()})
_PLACEHOLDERS = str.maketrans(dict.fromkeys(_KEEP.values()))


def extract_answer(text: str) -> str:
    """Return the answer a model gave, without its reasoning or answer tags (step 1)."""
    without_thinking = _THINK.sub("", text)
    answers = _ANSWER.findall(without_thinking)
    if answers:
        return answers[-1].strip()
    _before, opened, after = without_thinking.rpartition("<answer>")
    if opened:
        return after.strip()
    return without_thinking.strip()


def is_unanswerable(prediction: str) -> bool:
    """Whether an extracted prediction declares the question unanswerable (step 2)."""
    normalised = _WHITESPACE.sub(" ", unicodedata.normalize("NFKC", prediction).lower())
    normalised = normalised.strip(" .")
    return normalised.startswith(_REFUSALS)


def _is_punctuation(char: str) -> bool:
    return char in _ASCII_PUNCTUATION or unicodedata.category(char).startswith("P")


def _joins_word(char: str) -> bool:
    """Whether `char` before a sign makes it a hyphen inside a word rather than a sign."""
    return char.isalnum() and not _CJK.match(char)


def _number(match: re.Match[str]) -> str:
    sign, point, body, percent = match.groups()
    before = match.string[match.start() - 1] if match.start() else " "
    if _joins_word(before):
        sign = point = ""  # a hyphen or full stop inside a word, not part of the number
    if point:
        body = "0." + body
    if _THOUSANDS.fullmatch(body):
        body = body.replace(",", "")
    elif _ONE_COMMA.fullmatch(body):
        body = body.replace(",", ".")
    return (sign + body + (percent or "")).translate(_PROTECT)


def _numbers_protected(text: str) -> str:
    """Numbers with their marks turned into placeholders (the numeric rule)."""
    return _NUMBER.sub(_number, text)


def _drop_punctuation(text: str) -> str:
    chars = []
    for i, char in enumerate(text):
        if not _is_punctuation(char):
            chars.append(char)
        elif 0 < i < len(text) - 1 and text[i - 1].isdigit() and text[i + 1].isdigit():
            chars.append(" ")
    return "".join(chars)


def tokenize(text: str) -> list[str]:
    """Split text into the tokens QA-F1 compares (step 3); CJK characters count one by one."""
    lowered = unicodedata.normalize("NFKC", text).lower().translate(_PLACEHOLDERS)
    protected = _numbers_protected(lowered.translate(_DASHES))
    without_punctuation = _drop_punctuation(protected)
    without_articles = _ARTICLES.sub(" ", without_punctuation)
    return [
        token.translate(_RESTORE)
        for word in without_articles.split()
        for token in _CJK_OR_RUN.findall(word)
    ]


def _f1(predicted_tokens: list[str], answer: str) -> float:
    answer_tokens = tokenize(extract_answer(answer))
    if not predicted_tokens or not answer_tokens:
        return 1.0 if predicted_tokens == answer_tokens else 0.0
    common = sum((Counter(predicted_tokens) & Counter(answer_tokens)).values())
    if common == 0:
        return 0.0
    precision = common / len(predicted_tokens)
    recall = common / len(answer_tokens)
    return 2 * precision * recall / (precision + recall)


def qa_f1(prediction: str, answer: str | Sequence[str]) -> float:
    """Token F1 of a model's answer against the known answer (or the best of its aliases)."""
    predicted = extract_answer(prediction)
    if is_unanswerable(predicted):
        return 0.0
    aliases = [answer] if isinstance(answer, str) else list(answer)
    if not aliases:
        raise ValueError("qa_f1 needs at least one known answer")
    predicted_tokens = tokenize(predicted)
    return max(_f1(predicted_tokens, alias) for alias in aliases)
