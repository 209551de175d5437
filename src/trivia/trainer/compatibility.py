"""ms-swift settings under which masking completions would silently weaken or break the filter.

The trainer takes invalid, unscored and no-signal completions out of their group's statistics
and out of the loss. That is exact for the paper's setup (GRPO or RLOO advantages, fixed group
sizes, ``bnpo`` loss) and for the losses whose token normaliser is recomputed after masking;
under the settings refused here it would not be, so the run refuses to start instead.
"""

from __future__ import annotations

#: Losses normalised by ``num_items_in_batch``: the trainer recounts it after masking.
WINDOW_NORMALISED_LOSSES = frozenset({"dapo", "cispo", "fipo"})
#: Losses whose normaliser already leaves masked tokens out (``bnpo``) or averages per row.
MASKED_NORMALISER_LOSSES = frozenset({"bnpo", "grpo", "sapo", "dr_grpo"})
_ESTIMATORS = frozenset({"grpo", "rloo"})
_SCALES = frozenset({"group", "batch", "none"})


def refusals(
    *,
    dynamic_num_samples: bool,
    advantage_estimator: str,
    scale_rewards: str,
    kl_in_reward: bool,
    beta: float,
    loss_type: str,
) -> list[str]:
    """Why these settings cannot be combined with the filter; empty when they can."""
    problems = []
    if dynamic_num_samples:
        problems.append(
            "dynamic sample counts (multi-turn or resampled rollouts) change group sizes, and the "
            "filter needs fixed groups of num_generations"
        )
    if advantage_estimator not in _ESTIMATORS:
        problems.append(
            f"--advantage_estimator {advantage_estimator}: the filter computes group statistics "
            f"over kept completions for {sorted(_ESTIMATORS)} only"
        )
    if scale_rewards not in _SCALES:
        problems.append(f"--scale_rewards {scale_rewards}: supported are {sorted(_SCALES)}")
    if kl_in_reward and beta != 0.0:
        problems.append(
            "--kl_in_reward true with beta != 0 folds the KL into rewards before the filter sees "
            "them; use the KL loss term (kl_in_reward false)"
        )
    if loss_type not in WINDOW_NORMALISED_LOSSES | MASKED_NORMALISER_LOSSES:
        problems.append(
            f"--loss_type {loss_type}: masked completions would still shape the loss; use bnpo "
            "(the paper's), grpo, dr_grpo, sapo, dapo, cispo or fipo"
        )
    return problems
