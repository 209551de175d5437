from __future__ import annotations

import dataclasses

import pytest

from trivia.dataset.qa_from_table import qa_from_table
from trivia.metrics import qa_f1
from trivia.qa.lookup import DESCRIPTION, answer_messages, answer_question
from trivia.qa.prompts import NOT_ANSWERABLE, build_messages
from trivia.tables import html_to_otsl, html_to_table, table_to_html

TABLE = (
    "<table><thead><tr><td>Group</td><td>Weight (kg)</td><td>No of patients</td></tr></thead>"
    "<tbody><tr><td>Control</td><td>72</td><td>20</td></tr>"
    "<tr><td>Treated</td><td>68</td><td>21</td></tr>"
    "<tr><td>≥ 50 days</td><td>70</td><td>28</td></tr>"
    "<tr><td>&lt; 50 days</td><td>66</td><td>22</td></tr></tbody></table>"
)


def _with_cell(html: str, row: int, col: int, text: str) -> str:
    table = html_to_table(html)
    assert table is not None
    cells = tuple(
        dataclasses.replace(c, text=text) if (c.row, c.col) == (row, col) else c
        for c in table.cells
    )
    return table_to_html(dataclasses.replace(table, cells=cells))


def _mean_f1(html: str, pairs) -> float:
    return sum(qa_f1(answer_question(html, q), a) for q, a in pairs) / len(pairs)


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("What is the Weight (kg) of Control?", "72"),
        ("What is the value in row Treated, column No of patients?", "21"),
        ("What is the No of patients of Treated?", "21"),  # " of " inside the column label
        ("What is the No of patients of ≥ 50 days?", "28"),  # symbols tell rows apart
        ("What is the No of patients of < 50 days?", "22"),
        ("what's the weight (kg) of control", "72"),
        ("How many patients were in the Treated group (No of patients)?", "21"),  # free form
    ],
)
def test_answers_the_cell_at_the_named_row_and_column(question, answer):
    assert answer_question(TABLE, question) == answer


@pytest.mark.parametrize(
    "question",
    [
        "What is the Weight (kg) of Unknown group?",
        "What is the Height of Control?",
        "Who wrote this table?",
        "",
    ],
)
def test_says_not_answerable_when_nothing_matches(question):
    assert answer_question(TABLE, question) == NOT_ANSWERABLE


@pytest.mark.parametrize("table", ["", "<p>no table</p>", "<table></table>", "garbage<nl>"])
def test_tables_without_cells_are_not_answerable(table):
    assert answer_question(table, "What is the Weight of Control?") == NOT_ANSWERABLE


def test_answers_ground_truth_questions_on_the_pubtabnet_samples(gt_tables, cell_questions):
    scores = []
    for html in gt_tables.values():
        scores += [qa_f1(answer_question(html, q), a) for q, a, *_ in cell_questions(html)]
    assert len(scores) > 500
    assert sum(scores) / len(scores) >= 0.95


def test_otsl_tables_give_the_same_answers_as_html(gt_tables, cell_questions):
    for html in list(gt_tables.values())[:8]:
        otsl = html_to_otsl(html)
        for question, *_ in cell_questions(html)[:20]:
            assert answer_question(otsl, question) == answer_question(html, question)


def test_a_blanked_or_wrong_cell_scores_lower_than_the_correct_table(gt_tables, cell_questions):
    checked = 0
    for name, html in gt_tables.items():
        questions = cell_questions(html)
        if len(questions) < 4:
            continue
        pairs = [(q, a) for q, a, *_ in questions]
        correct = _mean_f1(html, pairs)
        question, answer, r, c = questions[len(questions) // 2]
        blanked = _with_cell(html, r, c, "")
        wrong = _with_cell(html, r, c, "999.99 (wrong)")
        assert answer_question(blanked, question) == NOT_ANSWERABLE, name
        assert qa_f1(answer_question(wrong, question), answer) < 1.0, name
        assert _mean_f1(blanked, pairs) < correct, name
        assert _mean_f1(wrong, pairs) < correct, name
        checked += 1
    assert checked >= 10


def test_generated_training_questions_reward_the_correct_table_most(gt_tables):
    html = gt_tables["PMC4219599_004_00.png"]
    pairs = [(p["question"], p["answer"]) for p in qa_from_table(html)]
    assert _mean_f1(html, pairs) == 1.0
    table = html_to_table(html)
    assert table is not None
    # A recognition that lost a whole row's values scores lower for that row's questions.
    damaged = html
    for c in range(1, table.n_cols):
        damaged = _with_cell(damaged, 5, c, "")
    assert _mean_f1(damaged, pairs) < 1.0


def test_answer_messages_reads_the_prompt_and_tags_the_answer():
    messages = build_messages(TABLE, "What is the Weight (kg) of Treated?")
    assert answer_messages(messages) == "<answer>68</answer>"
    assert answer_messages([{"role": "user", "content": "hi"}]) == "<answer>Not answerable</answer>"


def test_is_deterministic_and_says_it_is_a_heuristic():
    question = "What is the value in row Control, column Weight (kg)?"
    assert {answer_question(TABLE, question) for _ in range(5)} == {"72"}
    assert "heuristic" in DESCRIPTION and "not a language model" in DESCRIPTION


def test_a_table_is_indexed_once_for_many_concurrent_questions():
    from concurrent.futures import ThreadPoolExecutor

    from trivia.qa import lookup

    table = "<fcel>Group<fcel>Weight<nl>\n<fcel>Control<fcel>72<nl>\n<fcel>Treated<fcel>68<nl>\n"
    lookup._build_index.cache_clear()
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(lambda _: answer_question(table, "What is the Weight of Treated?"), range(30))
        )
    assert answers == ["68"] * 30
    info = lookup._build_index.cache_info()
    assert (info.misses, info.hits) == (1, 29)


def test_span_bombs_raise_grid_too_large():
    from tests.support.tables import span_bomb

    from trivia.tables import GridTooLarge

    with pytest.raises(GridTooLarge):
        answer_question(span_bomb(), "What is the x of x?")
