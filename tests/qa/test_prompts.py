from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trivia.qa.prompts import (
    NOT_ANSWERABLE,
    PROMPT_VERSION,
    SYSTEM_PROMPT,
    build_messages,
    parse_messages,
)

TABLE = "<table><tr><td>Group</td><td>Weight</td></tr><tr><td>A</td><td>72 kg</td></tr></table>"


def _prompt(messages: list[dict[str, str]]) -> str:
    return "".join(f"{m['role']}\n{m['content']}\n" for m in messages)


def test_table_comes_before_the_question():
    # The published reference swapped them ("Table: {question} Question: {table}").
    messages = build_messages(TABLE, "What is the Weight of A?")
    assert [m["role"] for m in messages] == ["system", "user"]
    user = messages[1]["content"]
    assert user.index(TABLE) < user.index("What is the Weight of A?")
    assert user.startswith("Table:\n" + TABLE)
    assert user.endswith("Question: What is the Weight of A?")


def test_instructions_ask_for_tagged_short_answers_from_the_table_only():
    assert "<answer>" in SYSTEM_PROMPT and "</answer>" in SYSTEM_PROMPT
    assert f"<answer>{NOT_ANSWERABLE}</answer>" in SYSTEM_PROMPT
    assert "only the table" in SYSTEM_PROMPT
    assert "OTSL" in SYSTEM_PROMPT and "HTML" in SYSTEM_PROMPT
    assert PROMPT_VERSION


def test_every_question_of_a_table_shares_at_least_90_percent_prefix(gt_tables, cell_questions):
    for name, html in gt_tables.items():
        questions = [q for q, *_ in cell_questions(html)][:30] or ["What is the total of all?"]
        questions += ["What is the value in row Week 15 after the first treatment, column N?"]
        prompts = [_prompt(build_messages(html, q)) for q in questions]
        common = min(
            next((i for i, (a, b) in enumerate(zip(p, prompts[0], strict=False)) if a != b), 0)
            for p in prompts[1:]
        )
        for prompt in prompts:
            assert common / len(prompt) >= 0.9, name


def test_parse_messages_returns_what_build_messages_put_in():
    table = "a\n\nQuestion: inside the table\n\n"
    assert parse_messages(build_messages(table, "Why?")) == (table, "Why?")


def test_questions_lose_line_breaks_so_parsing_stays_exact():
    messages = build_messages(TABLE, "  What is\n\nQuestion: x\tnow? ")
    assert parse_messages(messages) == (TABLE, "What is Question: x now?")


def test_build_messages_returns_fresh_lists():
    first = build_messages(TABLE, "q")
    first[1]["content"] = "changed"
    assert build_messages(TABLE, "q")[1]["content"] != "changed"


@pytest.mark.parametrize(
    "messages",
    [
        [],
        [{"role": "system", "content": "x"}],
        [{"role": "user", "content": "What is this?"}],
        [{"role": "user", "content": "Table:\nno question marker"}],
        [{"role": "user", "content": [{"type": "text", "text": "Table:\n"}]}],
    ],
)
def test_parse_messages_refuses_foreign_prompts(messages):
    with pytest.raises(ValueError):
        parse_messages(messages)


@settings(max_examples=200, deadline=None)
@given(table=st.text(), question=st.text())
def test_round_trip_on_any_text(table, question):
    parsed_table, parsed_question = parse_messages(build_messages(table, question))
    assert parsed_table == table
    assert parsed_question == " ".join(question.split())
