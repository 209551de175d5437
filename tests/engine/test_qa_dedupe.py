from __future__ import annotations

import json
from pathlib import Path

import pytest

from trivia.dataset import pubtabnet_html
from trivia.dataset.qa_from_table import qa_from_table
from trivia.engine.qa_candidate import Candidate
from trivia.engine.qa_dedupe import dedupe, near_duplicates, normalise_question

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "pubtabnet" / "examples.jsonl"


def test_normalised_text_keeps_the_words_that_say_what_is_asked() -> None:
    assert normalise_question("What's the Hazard-ratio of the Male patients, please?") == (
        "hazard ratio male patients"
    )
    assert normalise_question("What is the value in row T3, column Hazard ratio?") == (
        "t3 hazard ratio"
    )


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("What is the hazard ratio of Male?", "What's the hazard ratio for male?"),
        (
            "What is the hazard ratio of Male?",
            "According to the table, what is male's hazard ratio?",
        ),
        (
            "What is the hazard ratio of Male?",
            "What is the value in row Male, column Hazard ratio?",
        ),
        ("What is the hazard ratio of males?", "What is the hazard ratio for male patients?"),
        ("What is the hazard-ratio of Male?", "What is the hazard ratio of Male?"),
    ],
)
def test_rephrasings_with_the_same_answer_are_duplicates(first: str, second: str) -> None:
    assert near_duplicates(Candidate(first, "1.000"), Candidate(second, "1.000"))


def test_the_same_words_are_one_question_whatever_the_answers() -> None:
    assert near_duplicates(
        Candidate("What is the p value of Gender?", "0.142"),
        Candidate("What's the p value for gender?", "0.124"),
    )


@pytest.mark.parametrize(
    ("first", "second", "answers"),
    [
        ("What is the hazard ratio of G1?", "What is the hazard ratio of G2?", ("1.0", "1.0")),
        ("What is the hazard ratio of Male?", "What is the hazard ratio of ≤69?", ("1.0", "1.0")),
        (
            "What is the Dimer formation of abc?",
            "What is the Dimer formation of abcd?",
            ("no", "no"),
        ),
        ("What is the hazard ratio?", "What is the hazard ratio of Male?", ("1.0", "0.4")),
        ("What is the hazard ratio of male?", "What is the hazard ratio of female?", ("1", "1")),
    ],
)
def test_questions_about_different_cells_are_not_duplicates(
    first: str, second: str, answers: tuple[str, str]
) -> None:
    assert not near_duplicates(Candidate(first, answers[0]), Candidate(second, answers[1]))


def test_dedupe_keeps_the_first_of_each_group_and_checks_earlier_rounds() -> None:
    earlier = [Candidate("What is the hazard ratio of Male?", "1.000", 0)]
    candidates = [
        Candidate("What is the p value of Gender?", "0.142", 1),
        Candidate("Please give the hazard ratio for male patients.", "1.000", 1),
        Candidate("What is the p-value for gender?", "0.142", 1),
        Candidate("What is the p value of Age?", "0.716", 1),
    ]
    kept, duplicates = dedupe(candidates, earlier=earlier)
    assert kept == [candidates[0], candidates[3]]
    assert duplicates == [candidates[1], candidates[2]]


def test_exact_only_drops_only_the_same_words() -> None:
    candidates = [
        Candidate("What is the hazard ratio of Male?", "1.000"),
        Candidate("What is the hazard ratio of male patients?", "1.000"),
        Candidate("What's the hazard ratio for Male?", "1.000"),
    ]
    kept, duplicates = dedupe(candidates, exact_only=True)
    assert kept == candidates[:2]
    assert duplicates == [candidates[2]]


def _rephrase(question: str) -> str:
    return "Please tell me the " + question.removeprefix("What is the ").rstrip("?") + "."


def test_on_real_tables_distinct_questions_stay_and_every_rephrasing_goes() -> None:
    tables = [pubtabnet_html(json.loads(line)["html"]) for line in EXAMPLES.open()]
    checked = 0
    for html in tables:
        pairs = [
            Candidate(p["question"], p["answer"]) for p in qa_from_table(html, max_questions=999)
        ]
        kept, duplicates = dedupe(pairs)
        assert kept == pairs and not duplicates
        rephrased = [Candidate(_rephrase(c.question), c.answer) for c in pairs]
        kept, duplicates = dedupe(rephrased, earlier=pairs)
        assert not kept and duplicates == rephrased
        checked += len(pairs)
    assert checked > 300
