"""The planner decides validity and dedupes (table, question) pairs before anything is queued."""

from __future__ import annotations

import pytest

from trivia.reward import planner
from trivia.reward.api import RewardRequest
from trivia.reward.planner import normalise_completion, plan

OTSL = "<fcel>Name<fcel>Age<nl>\n<fcel>Bob<fcel>42<nl>\n<fcel>Ann<fcel>37<nl>\n"
HTML = (
    "<table><tr><td>Name</td><td>Age</td></tr><tr><td>Bob</td><td>42</td></tr>"
    "<tr><td>Ann</td><td>37</td></tr></table>"
)
PAIRS = [
    {"question": "What is the Age of Bob?", "answer": "42"},
    {"question": "What is the Age of Ann?", "answer": "37"},
]


def request(*completions: str, pairs=PAIRS, metrics=("qa_f1",), solution=None) -> RewardRequest:
    items = [
        {"id": f"i{n}", "completion": c, "qa_pairs": pairs, "solution": solution}
        for n, c in enumerate(completions)
    ]
    return RewardRequest.model_validate({"items": items, "metrics": list(metrics)})


def test_truncated_and_empty_completions_are_invalid_and_cost_no_job():
    work = plan(request(OTSL[:-5], "", "<table><tr><td>x", "<nl>"))
    assert [item.valid for item in work.items] == [False] * 4
    assert work.jobs == []


def test_otsl_and_html_of_one_table_share_one_job_and_each_question_is_asked_once():
    work = plan(request(OTSL, HTML, OTSL))
    assert len(work.jobs) == 1
    assert work.jobs[0].questions == [p["question"] for p in PAIRS]
    assert [item.job for item in work.items] == [0, 0, 0]
    assert work.qa_calls_naive == 6
    assert work.qa_calls_planned == 2


def test_a_changed_cell_is_another_table():
    changed = OTSL.replace("42", "24")
    work = plan(request(OTSL, changed))
    assert len(work.jobs) == 2
    assert work.jobs[0].table_hash != work.jobs[1].table_hash
    assert "24" in work.jobs[1].table


def test_questions_are_deduped_after_whitespace_is_collapsed():
    pairs = [
        {"question": "What is  the Age\nof Bob?", "answer": "42"},
        {"question": "What is the Age of Bob?", "answer": "forty-two"},
    ]
    work = plan(request(OTSL, pairs=pairs))
    job = work.jobs[0]
    assert job.questions == ["What is the Age of Bob?"]
    assert job.golds == [(0, "42"), (0, "forty-two")]
    assert work.items[0].golds == (0, 1)


def test_no_questions_and_no_teds_needs_no_job():
    work = plan(request(OTSL, pairs=[]))
    assert work.items[0].valid
    assert work.items[0].job is None
    assert work.jobs == []


def test_teds_only_items_get_a_job_for_their_solution():
    work = plan(request(OTSL, OTSL, pairs=[], metrics=("teds",), solution=HTML))
    assert len(work.jobs) == 1
    assert work.jobs[0].questions == []
    assert work.jobs[0].solutions == [HTML]
    assert [item.solution for item in work.items] == [0, 0]


def test_solution_is_ignored_unless_teds_is_asked():
    work = plan(request(OTSL, solution=HTML))
    assert work.jobs[0].solutions == []
    assert work.items[0].solution is None


def test_normalise_completion_gives_html_for_both_formats():
    assert normalise_completion(OTSL) == normalise_completion(HTML)
    assert normalise_completion("<table></table>") is None
    assert normalise_completion("no table at all") is None


def test_aliases_are_one_gold_and_a_list_answer_is_kept_whole():
    pairs = [
        {"question": "What is the Age of Bob?", "answer": ["42", "forty-two"]},
        {"question": "What is the Age of Bob?", "answer": ["42", "forty-two"]},
        {"question": "What is the Age of Bob?", "answer": "42"},
    ]
    work = plan(request(OTSL, pairs=pairs))
    assert work.jobs[0].questions == ["What is the Age of Bob?"]
    assert work.jobs[0].golds == [(0, ("42", "forty-two")), (0, "42")]
    assert work.items[0].golds == (0, 0, 1)


@pytest.mark.parametrize("answer", [[], ["42", 42], 42, None])
def test_the_api_refuses_malformed_aliases(answer):
    with pytest.raises(ValueError):
        request(OTSL, pairs=[{"question": "Age?", "answer": answer}])


def test_a_type_error_in_the_parser_is_a_bug_and_is_not_scored_as_invalid(monkeypatch):
    def broken(_: str):
        raise TypeError("unsupported operand")

    monkeypatch.setattr(planner, "otsl_to_table", broken)
    with pytest.raises(TypeError, match="unsupported operand"):
        plan(request(OTSL))


def test_a_table_whose_spans_explode_is_invalid_with_an_error_naming_the_bound():
    from tests.support.tables import span_bomb

    from trivia.reward.assemble import assemble

    body = request(span_bomb(), span_bomb(), OTSL)
    work = plan(body)
    assert [item.valid for item in work.items] == [False, False, True]
    assert "slots after spans (limit 100,000)" in work.items[0].error
    assert len(work.jobs) == 1
    out = assemble(body, work, {}, "late")
    assert out[0]["qa_f1"] == 0.0
    assert out[0]["error"] == work.items[0].error
