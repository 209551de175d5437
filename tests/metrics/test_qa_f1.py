"""QA-F1 follows its written definition, including the cases the old character count got wrong."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trivia.metrics.qa_f1 import extract_answer, is_unanswerable, qa_f1, tokenize


@pytest.mark.parametrize(
    ("prediction", "answer", "expected"),
    [
        ("<answer>72 kg</answer>", "72 kg", 1.0),
        ("1.5–2.0", "1.5-2.0", 1.0),
        ("Unanswerable.", "mA", 0.0),
        ("女性患者", "女性", 2 / 3),
        ("≤ 10", "≤10", 0.0),
    ],
)
def test_examples_of_the_definition(prediction: str, answer: str, expected: float) -> None:
    assert qa_f1(prediction, answer) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("prediction", "answer"),
    [("1,823", "1,832"), ("12", "21"), ("0.35", "0.53"), ("$1,200", "$2,100")],
)
def test_digits_in_another_order_are_a_different_answer(prediction: str, answer: str) -> None:
    # A character count over the joined string scored these 1.0.
    assert qa_f1(prediction, answer) == 0.0


# The numeric rule (module docstring): (prediction, answer, score). A table that lost a sign, a
# decimal point, a percent sign or a fraction bar must not earn full reward.
NUMERIC_CASES = [
    # signs
    ("-5", "5", 0.0),
    ("5", "-5", 0.0),
    ("+5", "5", 0.0),
    ("\u22125", "-5", 1.0),  # U+2212 minus sign
    ("\u20135", "-5", 1.0),  # en dash used as a minus
    ("\uff0d5", "-5", 1.0),  # full-width hyphen-minus
    ("(-5)", "-5", 1.0),
    ("-5 kg", "-5 kg", 1.0),
    ("-12.5 kg", "-12.5", 2 / 3),
    ("covid-19", "covid19", 1.0),  # a hyphen inside a word is not a sign
    # decimal points
    ("1.5", "15", 0.0),
    ("1.5", "1.5", 1.0),
    ("0.35", "0.53", 0.0),
    ("1.5", "1.50", 0.0),
    (".5", "0.5", 1.0),
    ("5.", "5", 1.0),  # a full stop after a number ends the sentence
    ("12.5kg", "125kg", 0.0),
    # percent
    ("5%", "5", 0.0),
    ("5 %", "5%", 1.0),
    ("５％", "5%", 1.0),
    ("50%", "50% of patients", 0.5),
    # fractions, ranges and dates
    ("10/20", "1020", 0.0),
    ("10/20", "10/20", 1.0),
    ("1.5\u20132.0", "1.5-2.0", 1.0),
    ("2019-2020", "20192020", 0.0),
    ("2020/01/02", "2020/01/02", 1.0),
    ("1:2", "12", 0.0),
    # thousands separators and decimal commas
    ("1,234", "1234", 1.0),
    ("1,234,567", "1234567", 1.0),
    ("12,345.6", "12345.6", 1.0),
    ("1,823", "1,832", 0.0),
    ("3,5", "3.5", 1.0),
    ("3,5", "35", 0.0),
    ("$1,200", "1200", 1.0),
    # Chinese
    ("增长-5%", "增长 -5%", 1.0),
    ("增长5%", "增长-5%", 2 / 3),
    ("１，２３４人", "1234人", 1.0),
    ("约1.5万", "约15万", 2 / 3),
    ("男性：42", "男性 42", 1.0),
    ("1、2", "12", 0.0),
    ("−3.2℃", "-3.2℃", 1.0),
    ("３／４", "3/4", 1.0),
    ("下降了0.5个百分点", "下降了5个百分点", 7 / 8),
    ("负债率-3.5%", "负债率 -3.5%", 1.0),
    ("共计12,000元", "共计12000元", 1.0),
    ("比例为1/3", "比例为13", 0.75),
]


def test_the_numeric_table_has_enough_cases() -> None:
    assert len(NUMERIC_CASES) >= 40
    assert sum(any("\u4e00" <= c <= "\u9fff" for c in p + a) for p, a, _ in NUMERIC_CASES) >= 8


@pytest.mark.parametrize(("prediction", "answer", "expected"), NUMERIC_CASES)
def test_numeric_rule(prediction: str, answer: str, expected: float) -> None:
    assert qa_f1(prediction, answer) == pytest.approx(expected)


def test_numeric_tokens_keep_their_marks() -> None:
    assert tokenize("-5 1.5 5% 10/20 1,234 3,5 1,2,3 .5") == [
        "-5",
        "1.5",
        "5%",
        "10/20",
        "1234",
        "3.5",
        "1,2,3",
        "0.5",
    ]
    assert tokenize("增长\u22125%") == ["增", "长", "-5%"]


def test_aliases_score_the_best_match() -> None:
    assert qa_f1("72 kg", ["72 kilograms", "72 kg"]) == 1.0
    assert qa_f1("72", ["72 kg", "seventy-two"]) == pytest.approx(2 / 3)
    assert qa_f1("Unanswerable", ["unanswerable", "n/a"]) == 0.0
    assert qa_f1("72 kg", ("72 kg",)) == qa_f1("72 kg", "72 kg")
    with pytest.raises(ValueError, match="at least one"):
        qa_f1("72", [])


def test_cjk_characters_in_another_order_still_match_one_by_one() -> None:
    # CJK text is compared character by character, so order does not matter there.
    assert qa_f1("患者数", "数者患") == 1.0


def test_partial_overlap_is_harmonic_mean_of_precision_and_recall() -> None:
    # pred tokens: 72, kg, per, day (4); answer: 72, kg (2); c = 2, P = 1/2, R = 1.
    assert qa_f1("72 kg per day", "72 kg") == pytest.approx(2 / 3)


def test_repeated_tokens_count_as_a_multiset() -> None:
    # pred: 5, 5, 5 ; answer: 5, 6 ; intersection {5: 1} -> P = 1/3, R = 1/2.
    assert qa_f1("5 5 5", "5 6") == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))
    assert qa_f1("5 5", "5 5") == 1.0


def test_thinking_is_ignored_and_the_last_answer_tag_wins() -> None:
    prediction = (
        "<think>it could be 40\nor 50</think>first <answer>40</answer> then <answer>50</answer>"
    )
    assert extract_answer(prediction) == "50"
    assert qa_f1(prediction, "50") == 1.0
    assert qa_f1(prediction, "40") == 0.0


def test_think_is_removed_non_greedily_and_answer_tags_in_thinking_do_not_count() -> None:
    text = "<think>a</think> kept <think><answer>9</answer></think> too"
    assert extract_answer(text) == "kept  too"


def test_an_unterminated_think_is_left_as_text() -> None:
    assert extract_answer("  <think>still thinking 42 ") == "<think>still thinking 42"


def test_answer_side_is_extracted_too() -> None:
    assert qa_f1("12 mg", "<think>x</think><answer> 12 mg </answer>") == 1.0


@pytest.mark.parametrize(
    "prediction",
    [
        "Unanswerable",
        "unanswerable.",
        "  NOT   answerable. ",
        "Not answerable from the table",
        "...unanswerable",
        "无法回答",
        "无法回答。",
        "<answer>Unanswerable</answer>",
        "ｕｎａｎｓｗｅｒａｂｌｅ",  # full-width, NFKC folds it
    ],
)
def test_refusals_score_zero_whatever_the_answer(prediction: str) -> None:
    assert is_unanswerable(extract_answer(prediction))
    assert qa_f1(prediction, prediction) == 0.0
    assert qa_f1(prediction, "unanswerable") == 0.0


def test_a_refusal_only_counts_at_the_start() -> None:
    assert not is_unanswerable("the question is unanswerable")
    assert qa_f1("answerable", "answerable") == 1.0


def test_empty_strings() -> None:
    assert qa_f1("", "") == 1.0
    assert qa_f1("...", "the") == 1.0  # both have no tokens
    assert qa_f1("", "5") == 0.0
    assert qa_f1("5", "") == 0.0
    assert qa_f1("<think>5</think>", "5") == 0.0


def test_tokenize_normalises_case_punctuation_and_articles() -> None:
    assert tokenize("The Mean (SD) of an A-B test, a year") == [
        "mean",
        "sd",
        "of",
        "ab",
        "test",
        "year",
    ]
    assert tokenize("theory another") == ["theory", "another"]


def test_tokenize_keeps_symbols_and_drops_unicode_punctuation() -> None:
    assert tokenize("≤ 10 ± 2 %") == ["≤", "10", "±", "2%"]
    assert tokenize("«quoted»—text") == ["quotedtext"]


def test_tokenize_applies_nfkc() -> None:
    assert tokenize("１２ｋｇ") == ["12kg"]
    assert tokenize("ﬁve") == ["five"]


def test_tokenize_splits_cjk_characters_and_keeps_other_runs() -> None:
    assert tokenize("女性患者") == ["女", "性", "患", "者"]
    assert tokenize("年龄65岁以上") == ["年", "龄", "65", "岁", "以", "上"]
    assert tokenize("한국어 test") == ["한", "국", "어", "test"]
    assert tokenize("カタカナとひらがな") == list("カタカナとひらがな")
    assert tokenize("abc中def") == ["abc", "中", "def"]


def test_korean_and_japanese_partial_overlap() -> None:
    assert qa_f1("남성", "남성 환자") == pytest.approx(2 * 1 * 0.5 / 1.5)
    assert qa_f1("東京都", "東京") == pytest.approx(0.8)


_refusal_free_text = st.text(max_size=30).filter(lambda s: not is_unanswerable(extract_answer(s)))


@given(_refusal_free_text, _refusal_free_text)
def test_symmetric_when_neither_is_a_refusal(a: str, b: str) -> None:
    assert qa_f1(a, b) == qa_f1(b, a)


@given(st.text(max_size=30), st.text(max_size=30))
def test_score_is_within_zero_and_one(a: str, b: str) -> None:
    assert 0.0 <= qa_f1(a, b) <= 1.0


@given(_refusal_free_text.filter(lambda s: tokenize(extract_answer(s))))
def test_identical_strings_with_tokens_score_one(text: str) -> None:
    assert qa_f1(text, text) == 1.0


@pytest.mark.parametrize(
    ("reply", "extracted"),
    [
        ("<answer>72 kg</answer>", "72 kg"),
        ("<answer>72 kg", "72 kg"),  # a finished reply that forgot to close the tag
        ("<think>hm</think><answer> 72 kg ", "72 kg"),
        ("<answer>1</answer> then <answer>2", "1"),  # a closed span wins
        ("72 kg", "72 kg"),
    ],
)
def test_an_unclosed_answer_tag_gives_the_text_after_it(reply: str, extracted: str) -> None:
    assert extract_answer(reply) == extracted
    assert qa_f1(reply, "72 kg") == (1.0 if extracted == "72 kg" else 0.0)
