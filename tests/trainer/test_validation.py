"""Validation TEDS / TEDS-S of completions against ground-truth HTML."""

from __future__ import annotations

import pytest

from trivia.trainer.validation import TableScores, mean_scores, table_scores

TRUTH = "<table><tr><td>a</td><td>b</td></tr><tr><td>1</td><td>2</td></tr></table>"


def test_a_perfect_otsl_completion_scores_one():
    scores = table_scores("<fcel>a<fcel>b<nl>\n<fcel>1<fcel>2<nl>\n", TRUTH)
    assert scores == TableScores(1.0, 1.0)


def test_wrong_text_lowers_teds_but_not_teds_s():
    scores = table_scores("<fcel>a<fcel>b<nl>\n<fcel>1<fcel>9<nl>\n", TRUTH)
    assert scores is not None
    assert scores.teds < 1.0
    assert scores.teds_structure == 1.0


def test_html_completions_are_scored_too():
    assert table_scores(TRUTH, TRUTH) == TableScores(1.0, 1.0)


def test_mean_skips_unscored():
    mean = mean_scores([TableScores(1.0, 1.0), None, TableScores(0.5, 0.0)])
    assert mean == TableScores(pytest.approx(0.75), pytest.approx(0.5))
    assert mean_scores([None]) is None
