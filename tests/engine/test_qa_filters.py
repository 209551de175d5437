from __future__ import annotations

import pytest

from trivia.engine.qa_filters import MAX_ANSWER_WORDS, rejection_reason

GOOD = [
    ("What is the hazard ratio of Male?", "1.000"),
    ("What is the 95 % CI for patients aged over 69?", "0.310–2.268"),
    ("Which histologic type has a hazard ratio of 0.381?", "Adenocarcinoma with mucinous features"),
    ("What is the p value for tumor size?", "0.329"),
    ("What is the mean age of the control group?", "54.2"),
    ("How many patients were male?", "42"),
    ("What is the unit of weight?", "kg"),
]


@pytest.mark.parametrize(("question", "answer"), GOOD)
def test_single_cell_questions_pass(question: str, answer: str) -> None:
    assert rejection_reason(question, answer) is None


@pytest.mark.parametrize(
    ("question", "reason"),
    [
        ("What is the sum of the hazard ratios of G1 and G2?", "arithmetic"),
        ("What is the difference between the p values of age and gender?", "arithmetic"),
        ("How many more patients were male than female?", "arithmetic"),
        ("What is the average of the hazard ratios?", "arithmetic"),
        ("How many rows does the table have?", "arithmetic"),
        ("What is the total of the first two values?", "arithmetic"),
        ("Which variable has the highest hazard ratio?", "comparison"),
        ("Is the p value of age greater than 0.5?", "comparison"),
        ("Which group has the most patients?", "comparison"),
        ("Compare the p values of gender and age.", "comparison"),
        ("What is in the third row?", "layout"),
        ("What value is in the last column of the Male row?", "layout"),
        ("What is the entry in row 3?", "layout"),
        ("What is written at the top of the table?", "layout"),
        ("What is the value to the right of Male?", "layout"),
    ],
)
def test_operations_and_positions_are_rejected(question: str, reason: str) -> None:
    assert rejection_reason(question, "1.0") == reason


def test_words_quoted_from_the_table_are_labels_not_operations() -> None:
    question = "What is the Total of Number of water samples analysed?"
    cells = ["Region", "Number of water samples analysed", "North", "Total", "1245"]
    assert rejection_reason(question, "1245") == "arithmetic"
    assert rejection_reason(question, "1245", table_text=cells) is None
    maximum = "What is the Maximum dose of drug A?"
    assert rejection_reason(maximum, "20 mg") == "comparison"
    assert rejection_reason(maximum, "20 mg", table_text=["Drug", "Maximum dose"]) is None
    line = "What is the response rate of first line treatment?"
    assert rejection_reason(line, "45%") == "layout"
    assert rejection_reason(line, "45%", table_text=["First line treatment"]) is None
    # Quoting a label does not excuse an operation that the label does not contain.
    assert (
        rejection_reason(
            line.replace("What is", "What is the sum of"),
            "45%",
            table_text=["First line treatment"],
        )
        == "arithmetic"
    )


def test_long_answers_are_rejected() -> None:
    long = " ".join(["word"] * (MAX_ANSWER_WORDS + 1))
    assert rejection_reason("What is the title?", long) == "long_answer"
    assert rejection_reason("What is the note?", "x" * 61) == "long_answer"
    assert rejection_reason("What is the note?", " ".join(["w"] * MAX_ANSWER_WORDS)) is None


@pytest.mark.parametrize("answer", ["12, 15 and 18", "G1; G2", "yes or no", "A & B", "1.2\n3.4"])
def test_lists_of_values_are_rejected(answer: str) -> None:
    assert rejection_reason("What are the grades?", answer) == "multi_value"


def test_a_cell_whose_text_has_a_separator_is_one_value() -> None:
    cells = ["Male, n (%)", "Grade and stage"]
    question = "Which label heads the sex rows?"
    assert rejection_reason(question, "Male, n (%)") == "multi_value"
    assert rejection_reason(question, "Male, n (%)", table_text=cells) is None
    assert rejection_reason("What is the count of cases?", "1,823") is None
