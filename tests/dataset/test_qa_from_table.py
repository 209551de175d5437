"""Deterministic QA pairs from ground-truth tables, answerable by the lookup answerer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trivia.dataset import pubtabnet_html
from trivia.dataset.qa_from_table import qa_from_table
from trivia.qa.lookup import answer_question

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "pubtabnet" / "examples.jsonl"

TABLE = (
    "<table><thead><tr><td>Group</td><td>Weight (kg)</td><td>Height (cm)</td></tr></thead>"
    "<tbody><tr><td>Control</td><td>72</td><td>170</td></tr>"
    "<tr><td>Treated</td><td>68</td><td></td></tr>"
    "<tr><td>Placebo</td><td>70</td><td>168</td></tr></tbody></table>"
)


def test_cell_questions_cover_body_cells_with_both_templates():
    pairs = qa_from_table(TABLE)
    answers = {p["answer"] for p in pairs}
    assert answers == {"72", "170", "68", "70", "168"}  # the empty cell gives no question
    questions = [p["question"] for p in pairs]
    assert "What is the Weight (kg) of Control?" in questions
    assert "What is the value in row Control, column Height (cm)?" in questions


def test_every_cell_question_is_answered_by_lookup_on_the_ground_truth():
    for line in EXAMPLES.read_text(encoding="utf-8").splitlines():
        html = pubtabnet_html(json.loads(line)["html"])
        for pair in qa_from_table(html):
            assert answer_question(html, pair["question"]) == pair["answer"]


def test_shipped_examples_give_questions():
    counts = [
        len(qa_from_table(pubtabnet_html(json.loads(line)["html"])))
        for line in EXAMPLES.read_text(encoding="utf-8").splitlines()
    ]
    assert sum(counts) > 100
    assert max(counts) == 30


def test_output_is_deterministic_and_bounded():
    html = pubtabnet_html(json.loads(EXAMPLES.read_text(encoding="utf-8").splitlines()[0])["html"])
    first = qa_from_table(html, max_questions=5)
    assert first == qa_from_table(html, max_questions=5)
    assert len(first) == 5
    # Spread over the table, not its first rows.
    assert first[-1] == qa_from_table(html)[len(qa_from_table(html)) * 4 // 5]


def test_count_and_unit_questions():
    pairs = qa_from_table(TABLE, kinds=("count", "unit"))
    assert {"question": "How many rows of data does the table have?", "answer": "3"} in pairs
    assert {"question": "What is the unit of Weight?", "answer": "kg"} in pairs
    assert {"question": "What is the unit of Height?", "answer": "cm"} in pairs
    assert len(pairs) == 3


def test_ambiguous_row_labels_are_skipped():
    table = (
        "<table><tr><td>k</td><td>v</td></tr><tr><td>a</td><td>1</td></tr>"
        "<tr><td>a</td><td>2</td></tr><tr><td>b</td><td>3</td></tr></table>"
    )
    assert [p["answer"] for p in qa_from_table(table)] == ["3"]


def test_no_table_no_questions():
    assert qa_from_table("<p>no table</p>") == []


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="kinds"):
        qa_from_table(TABLE, kinds=("opinion",))  # type: ignore[arg-type]
