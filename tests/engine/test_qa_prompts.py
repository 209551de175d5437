from __future__ import annotations

import json

import pytest

from trivia.engine.qa_candidate import Candidate
from trivia.engine.qa_prompts import (
    MAX_LISTED_QUESTIONS,
    blind_prompt,
    generation_prompt,
    parse_candidates,
    question_in,
    verification_prompt,
)

PAIRS = [
    {"question": "What is the hazard ratio of Male?", "answer": "1.000"},
    {"question": "What is the p value of Gender?", "answer": "0.142"},
]


def test_generation_prompt_asks_for_the_count_as_json() -> None:
    prompt = generation_prompt(25)
    assert "25 questions" in prompt
    assert '[{"question": "...", "answer": "..."}' in prompt
    assert "already proposed" not in prompt


def test_later_rounds_list_the_latest_questions_already_proposed() -> None:
    asked = [f"Question {i}?" for i in range(MAX_LISTED_QUESTIONS + 5)]
    prompt = generation_prompt(10, asked)
    assert "already proposed" in prompt
    assert "- Question 4?" not in prompt.splitlines()
    assert "- Question 5?" in prompt.splitlines()
    assert f"- Question {MAX_LISTED_QUESTIONS + 4}?" in prompt.splitlines()
    assert prompt.count("\n- Question") == MAX_LISTED_QUESTIONS


@pytest.mark.parametrize("build", [verification_prompt, blind_prompt])
def test_question_in_reads_back_the_question(build) -> None:
    assert question_in(build("What is the\n hazard ratio of Male?")) == (
        "What is the hazard ratio of Male?"
    )


def test_question_in_is_none_for_other_prompts() -> None:
    assert question_in(generation_prompt(5)) is None
    assert question_in("Question: what?") is None
    assert verification_prompt("q") != blind_prompt("q")


def test_a_plain_json_list_gives_candidates_in_order() -> None:
    parsed = parse_candidates(json.dumps(PAIRS), round=2)
    assert parsed.candidates == [
        Candidate("What is the hazard ratio of Male?", "1.000", 2),
        Candidate("What is the p value of Gender?", "0.142", 2),
    ]
    assert not parsed.drops


def test_fences_reasoning_prose_and_wrappers_are_tolerated() -> None:
    fenced = "<think>let me see [1]</think>Sure!\n```json\n" + json.dumps(PAIRS) + "\n```"
    wrapped = json.dumps({"questions": [{"Question": "Q?", "Answer": 42}]})
    prose = "Here are the questions: " + json.dumps(PAIRS) + " Hope this helps."
    assert len(parse_candidates(fenced).candidates) == 2
    assert parse_candidates(wrapped).candidates == [Candidate("Q?", "42")]
    assert len(parse_candidates(prose).candidates) == 2


def test_a_reply_cut_off_keeps_its_complete_items() -> None:
    text = json.dumps([*PAIRS, {"question": "What is the p value of Age?", "answer": "0.7"}])
    parsed = parse_candidates(text[:-25])
    assert [c.answer for c in parsed.candidates] == ["1.000", "0.142"]
    assert not parsed.drops


@pytest.mark.parametrize("text", ["", "no questions today", '"just a string"', "{[}", "{}"])
def test_a_reply_without_items_is_one_bad_json_drop(text: str) -> None:
    parsed = parse_candidates(text)
    assert parsed.candidates == []
    assert parsed.drops == {"bad_json": 1}


def test_an_empty_list_is_no_questions_and_no_drop() -> None:
    parsed = parse_candidates("```json\n[]\n```")
    assert parsed.candidates == [] and not parsed.drops


def test_bad_items_are_counted_by_reason() -> None:
    items = [
        {"question": "Which values?", "answer": ["1.2", "3.4"]},
        {"question": "Single?", "answer": ["1.2"]},
        {"question": "No answer?"},
        {"question": "", "answer": "x"},
        {"question": "Yes or no?", "answer": True},
        "not an object",
        {"q": "Short keys?", "a": 0.5},
    ]
    parsed = parse_candidates(json.dumps(items))
    assert parsed.candidates == [Candidate("Single?", "1.2"), Candidate("Short keys?", "0.5")]
    assert parsed.drops == {"multi_value": 1, "malformed": 4}
