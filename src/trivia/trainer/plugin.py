"""The plugin file for ``swift rlhf --external_plugins``: registers this project with ms-swift.

Importing it (ms-swift does, while parsing its arguments) registers the reward functions
``QA_F1_score`` and ``TEDS`` in ``orms`` (metrics are logged under these class names, e.g.
``rewards/QA_F1_score/mean``), points ``--rlhf_type grpo`` at the filtering trainer and adds
the ``trivia_stop`` callback (save and stop when `trivia train` is asked to stop). Its
options come from ``TRIVIA_*`` environment variables (see ``trivia.trainer.options``).
"""

from __future__ import annotations

import logging

from swift.callbacks import callbacks_map
from swift.rewards import AsyncORM, orms
from swift.trainers import TrainerFactory
from swift.utils import get_logger

from trivia.trainer.rewards import QAF1Reward, TEDSReward
from trivia.trainer.stop_callback import StopOnRequest
from trivia.trainer.stop_request import STOP_CALLBACK

TRAINER = "trivia.trainer.grpo_trainer.FilteringGRPOTrainer"


# Named as ms-swift logs it and the launch configs spell it.
class QA_F1_score(QAF1Reward, AsyncORM):
    """Mean QA-F1 of the answers to the image's questions, from the recognised table."""


class TEDS(TEDSReward, AsyncORM):
    """TEDS against the ground-truth ``solution``, for rows that have one."""


orms["QA_F1_score"] = QA_F1_score
orms["TEDS"] = TEDS
TrainerFactory.TRAINER_MAPPING["grpo"] = TRAINER
# `trivia train` adds it to `--callbacks`: SIGTERM becomes a checkpoint and a clean stop.
callbacks_map[STOP_CALLBACK] = StopOnRequest

# This project's log lines (unscored completions, where to inspect a step's batches) go to
# ms-swift's console handler: ms-swift turns the root logger's console output down to errors.
_swift_logger = get_logger()
_trivia_logger = logging.getLogger("trivia")
_trivia_logger.handlers = list(_swift_logger.handlers)
_trivia_logger.setLevel(_swift_logger.level)
_trivia_logger.propagate = False
