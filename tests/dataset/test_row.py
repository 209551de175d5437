"""A training row is accepted or rejected, without disk access, for the reasons stated."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from trivia.dataset.row import TrainingRow, row_problems

_DROP = object()
GOOD: dict[str, Any] = {
    "messages": [
        {"role": "system", "content": "You recognise tables."},
        {"role": "user", "content": "<image>Convert this table to OTSL."},
        {"role": "assistant", "content": ""},
    ],
    "images": ["images/a.png"],
    "qa_pairs": [{"question": "How many patients?", "answer": "42"}],
    "solution": "<table><tr><td>42</td></tr></table>",
    "source": "pubtabnet",
}


def _with(**changes: Any) -> dict[str, Any]:
    row = copy.deepcopy(GOOD)
    for key, value in changes.items():
        if value is _DROP:
            del row[key]
        else:
            row[key] = value
    return row


def test_a_good_row_has_no_problems_and_keeps_extra_columns() -> None:
    assert row_problems(GOOD) == []
    assert row_problems(_with(solution=_DROP)) == []
    assert TrainingRow.model_validate(GOOD).model_extra == {"source": "pubtabnet"}


def test_an_answer_may_be_a_list_of_aliases() -> None:
    aliases = [{"question": "Unit?", "answer": ["kg", "kilograms"]}]
    assert row_problems(_with(qa_pairs=aliases)) == []


def test_several_images_need_as_many_tags() -> None:
    row = _with(images=["a.png", "b.png"])
    assert row_problems(row) == ["1 <image> tags but 2 images"]
    row["messages"][1]["content"] = "<image><image>Two tables."
    assert row_problems(row) == []


@pytest.mark.parametrize(
    ("row", "reasons"),
    [
        ([1, 2], ["row is not a JSON object"]),
        ("text", ["row is not a JSON object"]),
        (_with(messages=_DROP), ["messages: missing"]),
        (_with(images=_DROP, qa_pairs=_DROP), ["images: missing", "qa_pairs: missing"]),
        (_with(messages=[]), ["messages: empty"]),
        (_with(images=[]), ["images: empty"]),
        (_with(qa_pairs=[]), ["qa_pairs: empty"]),
        (_with(images="a.png"), ["images: not a list"]),
        (_with(images=[""]), ["images[0]: must not be empty"]),
        (_with(images=[7]), ["images[0]: not a string"]),
        (_with(messages=[{"role": "user"}]), ["messages[0].content: missing"]),
        (_with(messages=["<image>"]), ["messages[0]: not an object"]),
        (
            _with(messages=[{"role": "robot", "content": "<image>"}]),
            ["messages[0].role: Input should be 'system', 'user', 'assistant' or 'tool'"],
        ),
        (
            _with(messages=[{"role": "user", "content": "Convert this table."}]),
            ["no <image> in a user turn", "0 <image> tags but 1 images"],
        ),
        (
            _with(
                messages=[
                    {"role": "user", "content": "Convert this table."},
                    {"role": "assistant", "content": "<image>"},
                ]
            ),
            ["no <image> in a user turn"],
        ),
        (
            _with(messages=[{"role": "user", "content": "<image> and <image>"}]),
            ["2 <image> tags but 1 images"],
        ),
        (_with(qa_pairs=["Q?"]), ["qa_pairs[0]: not an object"]),
        (_with(qa_pairs=[{"question": "Q?"}]), ["qa_pairs[0].answer: missing"]),
        (
            _with(qa_pairs=[{"question": "Q?", "answer": "A"}, {"question": " ", "answer": 3}]),
            [
                "qa_pairs[1].question: must not be empty",
                "qa_pairs[1].answer: not a string or a list of strings",
            ],
        ),
        (
            _with(qa_pairs=[{"question": "Q?", "answer": []}]),
            ["qa_pairs[0].answer: must not be an empty list"],
        ),
        (
            _with(qa_pairs=[{"question": "Q?", "answer": ["kg", " "]}]),
            ["qa_pairs[0].answer: must not be empty"],
        ),
        (
            _with(qa_pairs=[{"question": "Q?", "answer": ["kg", 3]}]),
            ["qa_pairs[0].answer: not a string or a list of strings"],
        ),
        (_with(solution=""), ["solution: must not be empty"]),
        (_with(solution=["<table>"]), ["solution: not a string"]),
        (_with(solution="Age: 42, Sex: male"), ["solution: contains no table"]),
    ],
)
def test_bad_rows_are_reported_with_every_reason(row: object, reasons: list[str]) -> None:
    assert row_problems(row) == reasons
