"""The plugin file for ``swift rlhf --external_plugins``: registers this project with ms-swift.

Importing it (ms-swift does, while parsing its arguments) registers the reward functions
``QA_F1_score`` and ``TEDS`` in ``orms`` (metrics are logged under these class names, e.g.
``rewards/QA_F1_score/mean``) and points ``--rlhf_type grpo`` at the filtering trainer. Its
options come from ``TRIVIA_*`` environment variables (see ``trivia.trainer.options``).
"""

from __future__ import annotations

from swift.rewards import AsyncORM, orms
from swift.trainers import TrainerFactory

from trivia.trainer.rewards import QAF1Reward, TEDSReward

__all__ = ["TEDS", "TRAINER", "QA_F1_score"]

TRAINER = "trivia.trainer.grpo_trainer.FilteringGRPOTrainer"


# Named as ms-swift logs it and the launch configs spell it.
class QA_F1_score(QAF1Reward, AsyncORM):
    """Mean QA-F1 of the answers to the image's questions, from the recognised table."""


class TEDS(TEDSReward, AsyncORM):
    """TEDS against the ground-truth ``solution``, for rows that have one."""


orms["QA_F1_score"] = QA_F1_score
orms["TEDS"] = TEDS
TrainerFactory.TRAINER_MAPPING["grpo"] = TRAINER
