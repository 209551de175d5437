"""The ms-swift glue: plugin registration, and advantages that match ms-swift's when all valid."""

from __future__ import annotations

import pytest

pytest.importorskip("swift", reason="needs the train extra (ms-swift)")

import numpy as np
import torch
from swift.rl_core.advantage import compute_advantages

from trivia.trainer.filtering import masked_group_advantages


@pytest.mark.parametrize("estimator", ["grpo", "rloo"])
@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_all_valid_advantages_equal_ms_swift(estimator, scale):
    rng = np.random.default_rng(0)
    rewards = rng.random(24).astype(np.float32)
    theirs, _ = compute_advantages(
        torch.tensor(rewards)[:, None],
        torch.ones(1),
        num_generations=8,
        advantage_estimator=estimator,
        scale_rewards=scale,
    )
    ours = masked_group_advantages(rewards, [True] * 24, 8, estimator=estimator, scale=scale)
    np.testing.assert_allclose(ours.advantages, theirs.numpy(), rtol=1e-4, atol=1e-5)


def test_plugin_registers_rewards_and_trainer():
    from swift.rewards import orms
    from swift.trainers import TrainerFactory

    from trivia.trainer import plugin

    assert orms["QA_F1_score"] is plugin.QA_F1_score
    assert orms["TEDS"] is plugin.TEDS
    assert TrainerFactory.TRAINER_MAPPING["grpo"] == plugin.TRAINER

    class Args:
        rlhf_type = "grpo"

    from trivia.trainer.grpo_trainer import FilteringGRPOTrainer

    assert TrainerFactory.get_trainer_cls(Args()) is FilteringGRPOTrainer
