"""Fan-out of job results: request order, 0.0 only for invalid tables, null for failures."""

from __future__ import annotations

import pytest

from trivia.reward.api import RewardRequest
from trivia.reward.assemble import assemble
from trivia.reward.planner import plan

OTSL = "<fcel>Name<fcel>Age<nl>\n<fcel>Bob<fcel>42<nl>\n<fcel>Ann<fcel>37<nl>\n"
PAIRS = [
    {"question": "What is the Age of Bob?", "answer": "42"},
    {"question": "What is the Age of Ann?", "answer": "37"},
]


def make(items, metrics=("qa_f1",)):
    body = RewardRequest.model_validate({"items": items, "metrics": list(metrics)})
    return body, plan(body)


def result(answers, f1, teds=(), error=None):
    return {"job": 0, "error": error, "answers": answers, "f1": f1, "teds": list(teds)}


def test_scores_fan_out_to_every_item_of_a_table_in_request_order():
    body, work = make(
        [
            {"id": "x", "completion": OTSL, "qa_pairs": PAIRS},
            {"id": "bad", "completion": OTSL[:-6], "qa_pairs": PAIRS},
            {"id": "y", "completion": OTSL, "qa_pairs": PAIRS[1:]},
        ]
    )
    out = assemble(body, work, {0: result([["42", None], ["36", None]], [1.0, 0.0])}, "late")
    assert [r["id"] for r in out] == ["x", "bad", "y"]
    assert out[0]["qa_f1"] == pytest.approx(0.5)
    assert [a["prediction"] for a in out[0]["answers"]] == ["42", "36"]
    assert out[1] == {
        "id": "bad",
        "valid": False,
        "qa_f1": 0.0,
        "teds": None,
        "teds_norm": None,
        "error": None,
        "answers": [],
    }
    assert out[2]["qa_f1"] == 0.0
    assert out[2]["answers"][0]["question"] == PAIRS[1]["question"]


def test_one_failed_question_makes_qa_f1_null_with_the_reason():
    body, work = make([{"id": "x", "completion": OTSL, "qa_pairs": PAIRS}])
    out = assemble(
        body, work, {0: result([["42", None], [None, "qa http: 503"]], [1.0, None])}, "late"
    )
    assert out[0]["qa_f1"] is None
    assert "1 of 2 questions failed" in out[0]["error"]
    assert "503" in out[0]["error"]
    assert out[0]["answers"][1]["f1"] is None


def test_a_missing_result_is_null_with_the_deadline_error_never_zero():
    body, work = make([{"id": "x", "completion": OTSL, "qa_pairs": PAIRS}])
    out = assemble(body, work, {}, "deadline: not scored within 1 s")
    assert out[0]["valid"] is True
    assert out[0]["qa_f1"] is None
    assert out[0]["error"] == "deadline: not scored within 1 s"
    assert [a["error"] for a in out[0]["answers"]] == [out[0]["error"]] * 2


def test_no_questions_is_null_without_error():
    body, work = make([{"id": "x", "completion": OTSL, "qa_pairs": []}])
    out = assemble(body, work, {}, "late")
    assert out[0]["qa_f1"] is None
    assert out[0]["error"] is None


def test_teds_comes_from_the_solution_slot_and_invalid_items_score_zero():
    solution = "<table><tr><td>Name</td></tr></table>"
    body, work = make(
        [
            {"id": "x", "completion": OTSL, "solution": solution},
            {"id": "bad", "completion": "<fcel>Na", "solution": solution},
            {"id": "bad-no-solution", "completion": "<fcel>Na"},
        ],
        metrics=("teds",),
    )
    out = assemble(body, work, {0: result([], [], teds=[[0.25, 0.5, None]])}, "late")
    assert [r["teds"] for r in out] == [0.25, 0.0, None]
    assert [r["teds_norm"] for r in out] == [0.5, 0.0, None]
    assert [r["qa_f1"] for r in out] == [None, None, None]
