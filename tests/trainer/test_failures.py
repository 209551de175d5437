"""Failure masking and the stop threshold."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trivia.trainer.failures import FailureGuard, RewardFailureError, failed_rows


def test_none_or_nan_in_a_weighted_function_fails_the_row():
    rewards = [[0.5, None], [None, 0.3], [math.nan, 0.1], [1.0, 0.2]]
    assert failed_rows(rewards, [1.0, 0.0]).tolist() == [False, True, True, False]
    assert failed_rows(rewards, [1.0, 1.0]).tolist() == [True, True, True, False]


def test_zero_weight_functions_never_fail_a_row():
    assert not failed_rows([[None], [None]], [0.0]).any()


def test_failed_rows_accepts_arrays_and_checks_width():
    table = np.array([[0.1, np.nan]])
    assert failed_rows(table, [0, 1]).tolist() == [True]
    with pytest.raises(ValueError, match="weights"):
        failed_rows(table, [1.0])


def test_guard_stops_after_patience_consecutive_bad_steps():
    guard = FailureGuard(threshold=0.05, patience=3)
    guard.observe(1, 10)
    guard.observe(1, 10)
    with pytest.raises(RewardFailureError, match=r"5% of completions for 3 consecutive steps"):
        guard.observe(2, 10, step=7)


def test_a_good_step_resets_the_streak():
    guard = FailureGuard(threshold=0.05, patience=3)
    for _ in range(5):
        guard.observe(5, 10)
        guard.observe(5, 10)
        guard.observe(0, 10)
    assert guard.streak == 0
    assert guard.total_failed == 50


def test_threshold_itself_is_allowed():
    guard = FailureGuard(threshold=0.25, patience=1)
    guard.observe(1, 4)
    with pytest.raises(RewardFailureError):
        guard.observe(2, 4)


@pytest.mark.parametrize("kwargs", [{"threshold": 1.5}, {"patience": 0}])
def test_bad_guard_settings(kwargs):
    with pytest.raises(ValueError):
        FailureGuard(**kwargs)


def test_impossible_counts_are_refused():
    with pytest.raises(ValueError):
        FailureGuard().observe(3, 2)
