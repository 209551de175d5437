"""Settings under which masking would silently weaken the filter are refused at start."""

from __future__ import annotations

import pytest

from trivia.trainer.compatibility import refusals
from trivia.trainer.datasets import DatasetError, check_no_question_share

PAPER = {
    "dynamic_num_samples": False,
    "advantage_estimator": "grpo",
    "scale_rewards": "group",
    "kl_in_reward": False,
    "beta": 0.04,
    "loss_type": "bnpo",
}


@pytest.mark.parametrize("loss_type", ["bnpo", "grpo", "dr_grpo", "sapo", "dapo", "cispo", "fipo"])
def test_the_papers_settings_and_the_supported_losses_pass(loss_type):
    assert refusals(**{**PAPER, "loss_type": loss_type}) == []
    assert (
        refusals(**{**PAPER, "advantage_estimator": "rloo", "kl_in_reward": True, "beta": 0.0})
        == []
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"dynamic_num_samples": True}, "fixed groups of num_generations"),
        ({"advantage_estimator": "reinforce_plus_plus"}, "--advantage_estimator"),
        ({"scale_rewards": "gdpo"}, "--scale_rewards gdpo"),
        ({"kl_in_reward": True}, "--kl_in_reward true with beta != 0"),
        ({"loss_type": "real"}, "--loss_type real"),
    ],
)
def test_each_weakening_setting_is_refused_with_a_reason(change, reason):
    (problem,) = refusals(**{**PAPER, **change})
    assert reason in problem


def test_a_training_set_with_too_many_rows_without_questions_is_refused():
    check_no_question_share(100, 5, 0.05)
    check_no_question_share(0, 0, 0.05)
    with pytest.raises(DatasetError, match=r"6 of 100 training rows \(6.0%\) have no qa_pairs"):
        check_no_question_share(100, 6, 0.05)
