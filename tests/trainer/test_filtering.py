"""The filter: validity per strategy, advantages over valid completions only, oversampling."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trivia.trainer.filtering import (
    HTML_TAILS,
    OTSL_TAIL,
    FilterStats,
    RejectionConfig,
    decode_tail,
    ends_with_tail,
    is_valid,
    masked_group_advantages,
    oversampled_size,
    prompt_tails,
    select_first_valid,
    validity,
)

OTSL_DONE = "<fcel>Age<fcel>HR<nl>\n<fcel>≤69<fcel>1.0<nl>\n"
OTSL_CUT = "<fcel>Age<fcel>HR<nl>\n<fcel>≤69<fc"


def test_tag_tail_accepts_complete_otsl_and_rejects_truncated():
    config = RejectionConfig(enabled=True, strategy="tag_tail", tag_tails=(OTSL_TAIL,))
    assert is_valid(OTSL_DONE, None, config)
    assert is_valid(OTSL_DONE.rstrip("\n"), None, config)  # EOS right after <nl>
    assert not is_valid(OTSL_CUT, None, config)
    assert not is_valid("", None, config)


def test_html_tails_accept_either_closing_tag():
    config = RejectionConfig(enabled=True, tag_tails=HTML_TAILS)
    assert is_valid("<table><tr><td>1</td></tr></table>\n", None, config)
    assert is_valid("<html><body><table></table></body></html>", None, config)
    assert not is_valid("<table><tr><td>1</td></tr>", None, config)


def test_a_completion_cut_at_the_length_limit_is_invalid_even_at_a_row_boundary():
    # Cut right after a row: it ends with the tail, so only the truncation signal catches it.
    for strategy, logprob in (("tag_tail", None), ("prob", -0.1), ("tag_tail+prob", -0.1)):
        config = RejectionConfig(enabled=True, strategy=strategy, min_logprob=-1.0)
        assert is_valid(OTSL_DONE, logprob, config)
        assert not is_valid(OTSL_DONE, logprob, config, truncated=True)
    checks = RejectionConfig(enabled=True, strategy="prob", min_logprob=-1.0).text_checks()
    assert validity([OTSL_DONE, OTSL_CUT], None, checks, truncated=[True, False]).tolist() == [
        False,
        True,
    ]
    assert is_valid(OTSL_DONE, None, RejectionConfig(enabled=False), truncated=True)


@pytest.mark.parametrize(
    ("prompt", "good", "bad"),
    [
        (
            "Convert the table to OTSL format using specified tags.<image>",
            OTSL_DONE,
            "<table></table>",
        ),
        ("Rows end with <nl>.", OTSL_DONE, "<table></table>"),
        ("Convert the table to HTML format.<image>", "<table></table>", OTSL_DONE),
        ("Recognise the table.", "<table></table>", OTSL_CUT),
        ("Recognise the table.", OTSL_DONE, OTSL_CUT),
    ],
)
def test_the_tail_comes_from_the_prompt_format_unless_configured(prompt, good, bad):
    config = RejectionConfig()  # the default: on, tail from the prompt
    assert config.enabled and config.tag_tails is None
    assert is_valid(good, None, config, prompt=prompt)
    assert not is_valid(bad, None, config, prompt=prompt)
    assert prompt_tails("Convert the table to HTML format.") == HTML_TAILS
    html_only = RejectionConfig(tag_tails=HTML_TAILS)
    assert not is_valid(OTSL_DONE, None, html_only, prompt="OTSL please")


def test_blank_tails_never_match():
    assert not ends_with_tail("anything", ["", "  "])


def test_shell_escaped_tail_is_decoded():
    assert decode_tail("<nl>\\n") == "<nl>\n"


def test_prob_strategy_uses_mean_logprob_threshold():
    config = RejectionConfig(enabled=True, strategy="prob", min_logprob=-2.0)
    assert is_valid(OTSL_CUT, -1.5, config)
    assert is_valid(OTSL_CUT, -2.0, config)
    assert not is_valid(OTSL_DONE, -2.5, config)
    assert not is_valid(OTSL_DONE, None, config)
    assert not is_valid(OTSL_DONE, math.nan, config)


def test_combined_strategy_needs_both():
    config = RejectionConfig(enabled=True, strategy="tag_tail+prob", min_logprob=-1.0)
    assert is_valid(OTSL_DONE, -0.5, config)
    assert not is_valid(OTSL_DONE, -3.0, config)
    assert not is_valid(OTSL_CUT, -0.5, config)


def test_disabled_filter_keeps_everything():
    config = RejectionConfig(enabled=False)
    assert validity(["", OTSL_CUT], None, config).tolist() == [True, True]


def test_validity_checks_lengths():
    with pytest.raises(ValueError, match="log-probabilities"):
        validity(["a", "b"], [0.0], RejectionConfig(enabled=True))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"strategy": "length"},
        {"strategy": "prob"},
        {"tag_tails": ("",)},
        {"oversample": 0.5},
    ],
)
def test_bad_configs_are_refused(kwargs):
    with pytest.raises(ValueError):
        RejectionConfig(enabled=True, **kwargs)


def _reference(rewards: np.ndarray, k: int, eps: float = 1e-4) -> np.ndarray:
    grouped = rewards.reshape(-1, k)
    mean = grouped.mean(axis=1, keepdims=True)
    std = grouped.std(axis=1, ddof=1, keepdims=True)
    return ((grouped - mean) / (std + eps)).reshape(-1)


def test_all_valid_matches_plain_grpo():
    rewards = np.array([0.1, 0.5, 0.9, 0.3, 1.0, 0.0, 0.2, 0.6])
    result = masked_group_advantages(rewards, [True] * 8, 4)
    np.testing.assert_allclose(result.advantages, _reference(rewards, 4))
    assert result.mask.all()
    assert (result.groups, result.groups_skipped) == (2, 0)


def test_statistics_come_from_valid_completions_only():
    rewards = np.array([0.2, 0.4, 0.9, math.nan])
    keep = np.array([True, True, False, False])
    result = masked_group_advantages(rewards, keep, 4)
    expected_valid = _reference(np.array([0.2, 0.4]), 2)
    np.testing.assert_allclose(result.advantages[:2], expected_valid)
    assert result.advantages[2:].tolist() == [0.0, 0.0]
    assert result.mask.tolist() == [True, True, False, False]
    # The invalid completion's high reward did not move the valid ones' mean.
    assert result.advantages[:2].sum() == pytest.approx(0.0, abs=1e-9)


def test_groups_with_fewer_than_two_valid_contribute_nothing():
    rewards = np.array([1.0, 0.0, 0.5, 0.5, 0.3, 0.7])
    keep = np.array([True, False, False, False, True, True])
    result = masked_group_advantages(rewards, keep, 2)
    assert result.mask.tolist() == [False, False, False, False, True, True]
    assert result.advantages[:4].tolist() == [0.0] * 4
    assert result.groups_skipped == 2


def test_all_invalid_batch_has_no_gradient():
    result = masked_group_advantages([0.3, 0.9, 0.1, 0.2], [False] * 4, 2)
    assert not result.mask.any()
    assert not result.advantages.any()
    assert result.groups_skipped == 2


def test_rloo_and_unscaled_forms():
    rewards = np.array([0.0, 1.0, 0.5, 9.0])
    keep = [True, True, True, False]
    rloo = masked_group_advantages(rewards, keep, 4, estimator="rloo", scale="none")
    mean = 0.5
    np.testing.assert_allclose(rloo.advantages[:3], (rewards[:3] - mean) * 3 / 2)
    plain = masked_group_advantages(rewards, keep, 4, scale="none")
    np.testing.assert_allclose(plain.advantages, [-0.5, 0.5, 0.0, 0.0])


def test_batch_scaling_uses_trained_rows_only():
    rewards = np.array([0.0, 1.0, 0.0, 3.0, 100.0, 7.0])
    keep = [True, True, True, True, True, False]
    result = masked_group_advantages(rewards, keep, 2, scale="batch")
    std = np.array([0.0, 1.0, 0.0, 3.0]).std(ddof=1)
    np.testing.assert_allclose(
        result.advantages[:4], np.array([-0.5, 0.5, -1.5, 1.5]) / (std + 1e-4)
    )
    assert result.mask.tolist() == [True] * 4 + [False] * 2


def test_shape_errors():
    with pytest.raises(ValueError, match="groups of 3"):
        masked_group_advantages([0.0] * 4, [True] * 4, 3)
    with pytest.raises(ValueError, match="shapes"):
        masked_group_advantages([0.0] * 4, [True] * 2, 2)


def test_filter_stats_rates():
    stats = FilterStats(completions=8, valid=6, groups=2, groups_skipped=0)
    assert (stats.valid_rate, stats.rejection_rate) == (0.75, 0.25)
    assert FilterStats(0, 0, 0, 0).valid_rate == 0.0


def test_oversampled_size():
    assert oversampled_size(8, 1.5) == 12
    assert oversampled_size(8, 1.0) == 8
    assert oversampled_size(2, 1.2) == 3
    with pytest.raises(ValueError):
        oversampled_size(8, 0.9)


def test_select_first_valid_keeps_first_valid_in_order():
    valid = [False, True, True, False, True, True, True, True, False]
    # Groups of 3 generated, keep 2: [1, 2], [4, 5], [6, 7].
    assert select_first_valid(valid, 3, 2) == [1, 2, 4, 5, 6, 7]


def test_select_first_valid_tops_up_short_groups_with_invalid():
    valid = [False, False, True, False, False, False]
    chosen = select_first_valid(valid, 3, 2)
    assert chosen == [0, 2, 3, 4]
    assert len(chosen) == 4  # every group keeps exactly two rows


def test_select_first_valid_rejects_bad_sizes():
    with pytest.raises(ValueError):
        select_first_valid([True] * 4, 2, 3)
    with pytest.raises(ValueError):
        select_first_valid([True] * 5, 2, 1)
