"""The answering prompt: the only place its text lives.

The table comes first and the question last, so every question about one table shares a long
common prefix that vLLM's prefix cache serves once per table. (The published reference put the
question in the table's slot and the table in the question's, which also defeats that cache.)
Change the text only together with `PROMPT_VERSION`: the version is part of answer-cache keys.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

PROMPT_VERSION = "qa-v1"

NOT_ANSWERABLE = "Not answerable"

SYSTEM_PROMPT = (
    "You answer questions about one table. The table is given as HTML, or as OTSL, where each "
    "row ends with <nl>, <fcel> starts a cell with text, <ecel> is an empty cell, and <lcel>, "
    "<ucel> and <xcel> are covered by the cell to the left, above, or both.\n"
    "Use only the table: no outside knowledge, no guessing. Answer with the shortest text that "
    "answers the question, usually one cell's text copied exactly, inside <answer></answer>, for "
    "example <answer>72 kg</answer>. If the table does not contain the answer, reply "
    f"<answer>{NOT_ANSWERABLE}</answer>."
)

_TABLE_HEAD = "Table:\n"
_QUESTION_HEAD = "\n\nQuestion: "
_WHITESPACE = re.compile(r"\s+")


def build_messages(table: str, question: str) -> list[dict[str, str]]:
    """Chat messages asking `question` about `table`: the table first, the question last.

    The question's whitespace is collapsed to single spaces, so it holds no line break and
    `parse_messages` can split the two apart exactly.
    """
    question = _WHITESPACE.sub(" ", question).strip()
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"{_TABLE_HEAD}{table}{_QUESTION_HEAD}{question}"},
    ]


def parse_messages(messages: Sequence[Mapping[str, object]]) -> tuple[str, str]:
    """The (table, question) that `build_messages` put into `messages`.

    Reads the last user message; raises ValueError when it was not built by `build_messages`.
    """
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            break
    else:
        raise ValueError("no user message")
    if not isinstance(content, str) or not content.startswith(_TABLE_HEAD):
        raise ValueError("user message does not start with the table")
    table, marker, question = content[len(_TABLE_HEAD) :].rpartition(_QUESTION_HEAD)
    if not marker:
        raise ValueError("user message has no question")
    return table, question
