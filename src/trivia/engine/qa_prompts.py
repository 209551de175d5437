"""The prompts of `trivia data qa` and the reading of the generator's replies.

Three prompts, the only place their text lives:

- generation (with the image): many short, single-answer questions about the table, as a JSON
  list of ``{"question", "answer"}``; later rounds list the questions already proposed, so the
  generator proposes new ones;
- verification (with the image) and the blind check (without it): answer one question inside
  ``<answer></answer>``, or say "Not answerable".

Replies are read robustly: a JSON list may come inside a code fence, after reasoning, wrapped in
an object, or cut off by the length limit (the complete items before the cut are kept). A reply
with no readable item is one ``bad_json`` drop, never an exception. Change any prompt text only
together with `PROMPT_VERSION`, which is part of each image's work key.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from trivia.engine.qa_candidate import Candidate
from trivia.qa.prompts import NOT_ANSWERABLE

PROMPT_VERSION = "data-qa-v1"

#: Later rounds list at most this many earlier questions, so prompts stay short.
MAX_LISTED_QUESTIONS = 80

_GENERATION = (
    "You write quiz questions about the table in the image. Propose {count} questions, each "
    "answered by the text of exactly one cell of the table.\n"
    "Rules:\n"
    "- The answer is one short value (a number, a word or a short phrase) copied exactly as "
    "written in the table; never a list.\n"
    '- Name the cell by its row and column labels, for example "What is the hazard ratio for '
    'male patients?"; never by position (no "first row", "last column", "top", "left").\n'
    '- No arithmetic, counting or comparison: no sums, differences, averages, "highest" or '
    '"more than".\n'
    "- The question must need the table: nothing general knowledge can answer.\n"
    "- Spread the questions over the whole table: every row and every column.\n"
    'Reply with a JSON list only: [{{"question": "...", "answer": "..."}}, ...]'
)
_ALREADY_ASKED = "\nThese questions were already proposed; ask different ones:\n{questions}"
_QUESTION_HEAD = "\n\nQuestion: "
_VERIFICATION = (
    "Answer the question using only the table in the image. Reply with the shortest answer, "
    "usually one cell's text copied exactly, inside <answer></answer>. If the table does not "
    f"answer it, reply <answer>{NOT_ANSWERABLE}</answer>."
)
_BLIND = (
    "Answer the question from your own knowledge. Reply with the shortest answer inside "
    f"<answer></answer>. If you cannot know the answer, reply <answer>{NOT_ANSWERABLE}</answer>."
)
_WHITESPACE = re.compile(r"\s+")
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)
_QUESTION_KEYS = ("question", "q", "query")
_ANSWER_KEYS = ("answer", "a", "ans")


def _one_line(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


def generation_prompt(count: int, asked: Sequence[str] = ()) -> str:
    """The prompt asking for `count` new questions; `asked` are questions already proposed."""
    prompt = _GENERATION.format(count=count)
    listed = [_one_line(q) for q in asked[-MAX_LISTED_QUESTIONS:]]
    if listed:
        prompt += _ALREADY_ASKED.format(questions="\n".join(f"- {q}" for q in listed))
    return prompt


def verification_prompt(question: str) -> str:
    """The prompt sent with the image: answer `question` from the table."""
    return f"{_VERIFICATION}{_QUESTION_HEAD}{_one_line(question)}"


def blind_prompt(question: str) -> str:
    """The prompt sent without the image: answer `question` from general knowledge."""
    return f"{_BLIND}{_QUESTION_HEAD}{_one_line(question)}"


def question_in(prompt: str) -> str | None:
    """The question a verification or blind prompt asks; None for any other prompt.

    For servers and test stubs that answer these prompts.
    """
    head, separator, question = prompt.rpartition(_QUESTION_HEAD)
    if not separator or head not in (_VERIFICATION, _BLIND):
        return None
    return question


@dataclass(slots=True)
class ParsedReply:
    """The candidates read from one generator reply and what had to be dropped while reading."""

    candidates: list[Candidate] = field(default_factory=list)
    drops: Counter[str] = field(default_factory=Counter)
    #: (reason, the item as proposed) for each item dropped while reading.
    rejected: list[tuple[str, Any]] = field(default_factory=list)


def _strip_fences(text: str) -> str:
    text = _THINK.sub("", text).strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0]
    return text.strip()


def _decode(text: str) -> Any:
    """The JSON value in `text`, or the complete objects found in it when it does not parse."""
    decoder = json.JSONDecoder()
    for start in (0, text.find("[")):
        if start < 0:
            continue
        try:
            return decoder.raw_decode(text, start)[0]
        except json.JSONDecodeError:
            pass
    salvaged: list[Any] = []
    position = text.find("{")
    while position >= 0:
        try:
            value, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError:
            position = text.find("{", position + 1)
            continue
        salvaged.append(value)
        position = text.find("{", end)
    return salvaged or None


def _items(value: Any) -> list[Any] | None:
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        if _field(value, _QUESTION_KEYS) is not None:
            return [value]
        for inner in value.values():
            if isinstance(inner, list):
                return inner
    return None


def _field(item: dict[str, Any], keys: tuple[str, ...]) -> Any:
    lowered = {str(k).strip().lower(): v for k, v in item.items()}
    for key in keys:
        if key in lowered:
            return lowered[key]
    return None


def _as_text(value: Any) -> str | list[str] | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return _one_line(value)
    if isinstance(value, list):
        texts = [_as_text(v) for v in value]
        if not texts or any(not isinstance(t, str) for t in texts):
            return None
        return [t for t in texts if isinstance(t, str)]
    return None


def parse_candidates(text: str, *, round: int = 0) -> ParsedReply:
    """The question-answer pairs in one generator reply, tagged with the `round` they came in.

    Items without a usable question or answer count as ``malformed``; an answer given as a list
    of several values as ``multi_value`` (a one-element list is its element); a reply with no
    list or object of items at all as one ``bad_json`` (an empty list is no questions, no drop).
    """
    parsed = ParsedReply()
    items = _items(_decode(_strip_fences(text)))
    if items is None:
        parsed.drops["bad_json"] += 1
        return parsed
    for item in items:
        question = _as_text(_field(item, _QUESTION_KEYS)) if isinstance(item, dict) else None
        answer = _as_text(_field(item, _ANSWER_KEYS)) if isinstance(item, dict) else None
        if isinstance(answer, list) and len(answer) == 1:
            answer = answer[0]
        if not isinstance(question, str) or not question or answer is None or answer == "":
            parsed.drops["malformed"] += 1
            parsed.rejected.append(("malformed", item))
        elif isinstance(answer, list):
            parsed.drops["multi_value"] += 1
            parsed.rejected.append(("multi_value", item))
        else:
            parsed.candidates.append(Candidate(question, answer, round))
    return parsed
