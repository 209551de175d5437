"""Validity and consistency of K recognitions, checked by hand against `teds`."""

from __future__ import annotations

import pytest

from trivia.engine.consistency import check_output, consistency
from trivia.metrics import teds
from trivia.tables import otsl_to_html

A = "<fcel>Group<fcel>Weight<nl>\n<fcel>Control<fcel>72<nl>\n<fcel>Treated<fcel>68<nl>\n"
B = "<fcel>Group<fcel>Weight<nl>\n<fcel>Control<fcel>72<nl>\n"  # a row dropped
C = "<fcel>Group<fcel>Weight<nl>\n<fcel>Control<fcel>27<nl>\n<fcel>Treated<fcel>68<nl>\n"
CUT = "<fcel>Group<fcel>Weight<nl>\n<fcel>Contr"


def test_two_identical_and_one_different():
    t = teds(otsl_to_html(A), otsl_to_html(B))
    assert 0 < t < 1
    result = consistency([A, A, B])
    # Pairs: (A, A) = 1, (A, B) = t, (A, B) = t.
    assert result.score == pytest.approx((1 + 2 * t) / 3, abs=1e-12)
    assert result.teds[0][1] == 1.0 and result.teds[0][2] == result.teds[2][1] == t
    assert result.consensus == 0 and result.n_valid == 3


def test_invalid_outputs_count_zero_against_everything():
    t_ac = teds(otsl_to_html(A), otsl_to_html(C))
    result = consistency([A, CUT, C, ""])
    # Six pairs; only (A, C) is between two valid outputs.
    assert result.score == pytest.approx(t_ac / 6, abs=1e-12)
    assert [c.valid for c in result.checks] == [True, False, True, False]
    assert [c.reason for c in result.checks] == [None, "incomplete", None, "empty"]
    assert result.teds[1] == (0.0, 0.0, 0.0, 0.0)
    assert result.consensus == 0  # a tie between A and C goes to the first


def test_all_equal_is_one_and_none_valid_is_zero_without_consensus():
    assert consistency([A, A, A, A]).score == 1.0
    nothing = consistency([CUT, "", "<table><tr></tr></table>"])
    assert nothing.score == 0.0 and nothing.consensus is None
    assert [c.reason for c in nothing.checks] == ["incomplete", "empty", "no_table"]


def test_html_outputs_and_finish_reasons():
    html = otsl_to_html(A)
    assert consistency([html, A]).score == 1.0  # formats may be mixed: both become HTML
    assert check_output(CUT, "length").reason == "truncated"
    assert check_output(CUT, "stop").reason == "incomplete"
    assert check_output("<table><tr><td>x</td></tr>").reason == "incomplete"


def test_a_table_too_large_for_teds_is_invalid_with_the_reason():
    huge = "".join("<fcel>x" * 80 + "<nl>\n" for _ in range(70))  # 5,600 cells
    result = consistency([A, huge, C])
    assert not result.checks[1].valid
    assert result.checks[1].reason.startswith("too_large: table too large for TEDS")
    t_ac = teds(otsl_to_html(A), otsl_to_html(C))
    assert result.score == pytest.approx(t_ac / 3, abs=1e-12)


def test_needs_two_outputs():
    with pytest.raises(ValueError):
        consistency([A])


def test_an_output_cut_at_max_tokens_is_truncated_even_on_a_row_end():
    from trivia.engine.consistency import check_output

    whole_rows = "<fcel>a<fcel>b<nl>\n"
    assert check_output(whole_rows, "stop").valid
    cut = check_output(whole_rows, "length")
    assert not cut.valid and cut.reason == "truncated"


def test_the_invalid_rule_zero_or_exclude():
    from trivia.engine.consistency import consistency, pair_mean

    table = "<fcel>a<fcel>b<nl>\n<fcel>1<fcel>2<nl>\n"
    texts = [table, table, table, "<fcel>a<fcel>"]
    zero = consistency(texts, ["stop", "stop", "stop", "length"])
    exclude = consistency(texts, ["stop", "stop", "stop", "length"], invalid="exclude")
    assert zero.score == 0.5  # 3 agreeing pairs of 6
    assert exclude.score == 1.0  # only the valid pairs count
    assert pair_mean(zero.teds, [True] * 3 + [False], "exclude") == 1.0
    assert consistency(["", ""], invalid="exclude").score == 0.0
