"""Reward failures: completions the reward service could not score are excluded, not trained on.

A reward function returns ``None`` when the service could not compute a score (the QA model
timed out, the service was down past its deadline). Stock ms-swift turns such a row into reward
0, which would teach the policy that its table was wrong. Here such a completion is masked out
of the loss and out of its group's statistics, and a run whose failures stay above a threshold
stops with a clear message instead of training on a broken signal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


class RewardFailureError(RuntimeError):
    """Too many completions could not be scored for too many consecutive steps."""


def failed_rows(
    rewards_per_func: Sequence[Sequence[float | None]] | np.ndarray,
    weights: Sequence[float] | np.ndarray,
) -> np.ndarray:
    """Rows where a reward function that counts (non-zero weight) returned ``None`` / NaN.

    A function with weight 0 (TEDS in the paper's run) is logged but never fails a row.
    """
    table = np.array(
        [[math.nan if v is None else float(v) for v in row] for row in rewards_per_func],
        dtype=np.float64,
    ).reshape(len(rewards_per_func), -1)
    counting = np.asarray(weights, dtype=np.float64) != 0
    if table.shape[1] != counting.size:
        raise ValueError(f"{table.shape[1]} reward columns but {counting.size} weights")
    return np.isnan(table[:, counting]).any(axis=1)


@dataclass(slots=True)
class FailureGuard:
    """Stops the run when failures exceed ``threshold`` of a step's completions ``patience``
    steps in a row; one good step resets the count."""

    threshold: float = 0.05
    patience: int = 3
    streak: int = field(default=0, init=False)
    total_failed: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"failure threshold must be in [0, 1], not {self.threshold}")
        if self.patience < 1:
            raise ValueError(f"failure patience must be at least 1 step, not {self.patience}")

    def observe(self, failed: int, total: int, step: int | None = None) -> None:
        """Record one step's count; raise ``RewardFailureError`` when the limit is reached."""
        if not 0 <= failed <= total:
            raise ValueError(f"{failed} failures out of {total} completions")
        self.total_failed += failed
        share = failed / total if total else 0.0
        self.streak = self.streak + 1 if share > self.threshold else 0
        if self.streak >= self.patience:
            where = f" (step {step})" if step is not None else ""
            raise RewardFailureError(
                f"reward failures above {self.threshold:.0%} of completions for {self.streak} "
                f"consecutive steps{where}: the last step lost {failed} of {total} rewards. "
                "The reward service or its QA model is failing: check the gateway, its workers "
                "and the QA endpoint, then resume. Stopping rather than training on a broken "
                "signal."
            )
