"""ms-swift's GRPO trainer with the filter, failure masking and metrics wired into its hooks.

Reads top to bottom in the order ms-swift calls the hooks in one generation step:

1. ``_rollout_samples``: with ``rejection_oversample`` > 1 (one process only), generate more
   completions per prompt and keep the first valid ones, so groups stay full.
2. ``_score_completions``: rewards (stock); in evaluation, TEDS / TEDS-S (raw and normalised)
   of rows with a ground truth (``solution`` or the assistant turn) are logged as eval metrics.
3. ``_postprocess_batch``: decide which completions are kept (valid by the filter and scored
   by every reward function that counts), stop the run if failures persist, compute advantages
   over the kept completions only (``_compute_advantages``), then take the other rows out of
   the loss by zeroing their completion mask and advantage.

The decisions themselves live in ``filtering``, ``failures``, ``metrics`` and ``validation``.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
from accelerate.utils import gather_object
from swift.rlhf_trainers import GRPOTrainer
from swift.rlhf_trainers.utils import get_even_process_data
from swift.utils import get_logger
from transformers import TrainerCallback

from trivia.trainer.compatibility import WINDOW_NORMALISED_LOSSES, refusals
from trivia.trainer.datasets import check_no_question_share
from trivia.trainer.failures import FailureGuard, failed_rows
from trivia.trainer.filtering import (
    FilterStats,
    masked_group_advantages,
    oversampled_size,
    select_first_valid,
    validity,
)
from trivia.trainer.metrics import (
    GENERATED_VALID_RATE,
    STEP_SECONDS,
    TEDS,
    TEDS_NORM,
    TEDS_STRUCTURE,
    TEDS_STRUCTURE_NORM,
    TOKENS_PER_SECOND,
    TrainMetricsExporter,
    filter_metrics,
)
from trivia.trainer.options import PluginOptions
from trivia.trainer.validation import mean_scores, table_scores, with_ground_truth

logger = get_logger()


class _PrometheusCallback(TrainerCallback):
    """Feeds every logged dictionary to the exporter (rank 0 only)."""

    def __init__(self, exporter: TrainMetricsExporter) -> None:
        self.exporter = exporter

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs:
            self.exporter.observe(logs, step=state.global_step)


def _exclude_rows(batch_encoded_inputs: list[dict[str, Any]], keep: list[bool]) -> None:
    """Take rows out of the loss: zero their completion mask and advantage (as overlong_filter).

    ``keep`` covers this process's rows, mini-batch after mini-batch.
    """
    offset = 0
    for encoded in batch_encoded_inputs:
        batch = encoded["grpo_batch"]
        mask = batch.completion_mask
        rows = torch.tensor(keep[offset : offset + mask.shape[0]], device=mask.device)
        offset += mask.shape[0]
        batch.completion_mask = mask * rows[:, None].to(mask.dtype)
        if batch.advantages is not None:
            shape = (-1,) + (1,) * (batch.advantages.dim() - 1)
            batch.advantages = batch.advantages * rows.view(shape).to(batch.advantages.dtype)


def _mean_logprobs(batch_encoded_inputs: list[dict[str, Any]]) -> list[float]:
    """Mean token log-probability of each row under the sampler (NaN for an empty row)."""
    means: list[float] = []
    for encoded in batch_encoded_inputs:
        batch = encoded["grpo_batch"]
        logps = batch.rollout_per_token_logps
        if logps is None:
            logps = batch.old_per_token_logps
        mask = batch.completion_mask.to(logps.dtype)
        for total, count in zip((logps * mask).sum(-1), mask.sum(-1), strict=True):
            means.append((total / count).item() if count > 0 else math.nan)
    return means


class FilteringGRPOTrainer(GRPOTrainer):
    """GRPO that trains only on valid, successfully scored completions."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options = PluginOptions()
        self.rejection = options.rejection
        problems = refusals(
            dynamic_num_samples=bool(self.dynamic_num_samples),
            advantage_estimator=str(self.advantage_estimator),
            scale_rewards=str(self.scale_rewards),
            kl_in_reward=bool(self.kl_in_reward),
            beta=float(self.beta),
            loss_type=str(self.loss_type),
        )
        if problems:
            raise ValueError(
                "the trainer masks invalid and unscored completions, which these settings would "
                "silently weaken: " + "; ".join(problems)
            )
        self._needs = [
            getattr(func, "needs", None) if weight != 0 else None
            for func, weight in zip(self.reward_funcs, self.reward_weights.tolist(), strict=True)
        ]
        self._check_training_set(options.max_no_question_share)
        self.failure_guard = FailureGuard(options.failure_threshold, options.failure_patience)
        self._keep: np.ndarray | None = None
        self._row_mask = np.zeros(0, dtype=bool)
        self._groups_skipped = 0
        self._step_started = time.monotonic()
        self.oversample_to = 0
        if self.rejection.enabled and self.rejection.oversample > 1.0:
            single = self.accelerator.num_processes == 1
            if single and self.template.sequence_parallel_size == 1:
                factor = self.rejection.oversample
                self.oversample_to = oversampled_size(self.num_generations, factor)
            else:
                logger.warning("rejection_oversample needs a single process; masking only.")
        if options.train_metrics_port and self.accelerator.is_main_process:
            exporter = TrainMetricsExporter()
            exporter.serve(options.train_metrics_port, options.train_metrics_host)
            self.add_callback(_PrometheusCallback(exporter))
            logger.info(
                f"trainer metrics on {options.train_metrics_host}:{options.train_metrics_port}"
            )
        message = f"{self.rejection.describe()}; oversample to {self.oversample_to or 'off'}"
        (logger.info if self.rejection.enabled else logger.warning)(message)

    def _check_training_set(self, limit: float) -> None:
        """Refuse a training set where too many rows lack what a counted reward needs."""
        dataset = self.train_dataset
        columns = {need for need in self._needs if need}
        if not columns or dataset is None or not hasattr(dataset, "column_names"):
            return
        for column in sorted(columns):
            values = dataset[column] if column in dataset.column_names else [None] * len(dataset)
            check_no_question_share(len(values), sum(1 for v in values if not v), limit)

    def _no_signal(self, samples: list[Any]) -> list[bool]:
        """Rows that lack the column a counted reward needs (no questions): nothing to learn."""
        return [any(need and not s.extra.get(need) for need in self._needs) for s in samples]

    def _prompt_text(self, sample: Any) -> str:
        parts = []
        for message in sample.messages[:-1]:
            content = message.get("content")
            if message.get("role") in ("system", "user") and isinstance(content, str):
                parts.append(content)
        return "\n".join(parts)

    @property
    def _mode(self) -> str:
        return "train" if self.model.training else "eval"

    def _completion_text(self, sample: Any) -> str:
        content = sample.messages[-1]["content"]
        if isinstance(content, str):
            return content
        ids = content["token_ids"] if isinstance(content, dict) else content
        return self.processing_class.decode(ids)

    # 1. generation ------------------------------------------------------------------------------

    def _rollout_samples(self, inputs: list[dict[str, Any]]) -> list[Any]:
        if self._mode == "eval":
            # ms-swift replaces the assistant turn by the completion: keep it as the truth.
            inputs = [with_ground_truth(row) for row in inputs]
        g, m = self.num_generations, self.oversample_to
        if self._mode != "train" or not m or len(inputs) % g:
            return super()._rollout_samples(inputs)
        groups = [inputs[i : i + g] for i in range(0, len(inputs), g)]
        if any(row["messages"] != group[0]["messages"] for group in groups for row in group):
            return super()._rollout_samples(inputs)
        samples = super()._rollout_samples([group[k % g] for group in groups for k in range(m)])
        # Log-probabilities come later: choose among the oversample by the text checks.
        texts = [self._completion_text(s) for s in samples]
        valid = validity(
            texts,
            None,
            self.rejection.text_checks(),
            truncated=[bool(s.is_truncated) for s in samples],
            prompts=[self._prompt_text(s) for s in samples],
        )
        self._metrics["train"][GENERATED_VALID_RATE].append(float(valid.mean()))
        return [samples[i] for i in select_first_valid(valid.tolist(), m, g)]

    # 2. rewards ---------------------------------------------------------------------------------

    def _score_completions(self, samples: list[Any]) -> list[Any]:
        samples = super()._score_completions(samples)
        if self._mode == "eval":
            local = [
                table_scores(self._completion_text(s), str(s.extra["solution"]))
                for s in samples
                if s.extra.get("solution")
            ]
            scores = mean_scores(gather_object(local))
            if scores is not None:
                self._metrics["eval"][TEDS].append(scores.teds)
                self._metrics["eval"][TEDS_STRUCTURE].append(scores.teds_structure)
                self._metrics["eval"][TEDS_NORM].append(scores.teds_norm)
                self._metrics["eval"][TEDS_STRUCTURE_NORM].append(scores.teds_structure_norm)
        return samples

    # 3. advantages and masks --------------------------------------------------------------------

    def _postprocess_batch(self, samples: list[Any], batch_encoded_inputs: list[dict]) -> None:
        if self._mode != "train":
            self._keep = None
            super()._postprocess_batch(samples, batch_encoded_inputs)
            return
        texts = [self._completion_text(s) for s in samples]
        logprobs = (
            _mean_logprobs(batch_encoded_inputs) if "prob" in self.rejection.strategy else None
        )
        local_truncated = [bool(s.is_truncated) for s in samples]
        local_valid = validity(
            texts,
            logprobs,
            self.rejection,
            truncated=local_truncated,
            prompts=[self._prompt_text(s) for s in samples],
        )
        valid = np.array(gather_object(local_valid.tolist()), bool)
        truncated = np.array(gather_object(local_truncated), bool)
        no_signal = np.array(gather_object(self._no_signal(samples)), bool)
        rewards = self._rewards_per_func.detach().float().cpu().numpy()
        failed = failed_rows(rewards, self.reward_weights.detach().float().cpu().numpy())
        failed &= ~no_signal  # nothing to score is not a failure of the reward service
        self._keep = valid & ~failed & ~no_signal
        scorable = len(failed) - int(no_signal.sum())
        self.failure_guard.observe(int(failed.sum()), scorable, step=self.state.global_step)
        tokens = sum(
            int(e["grpo_batch"].completion_mask.sum().item()) for e in batch_encoded_inputs
        )

        super()._postprocess_batch(samples, batch_encoded_inputs)  # calls _compute_advantages
        _exclude_rows(batch_encoded_inputs, get_even_process_data(self, self._row_mask.tolist()))
        if self.loss_type in WINDOW_NORMALISED_LOSSES:
            self._recount_num_items(batch_encoded_inputs)
        self._log_step(
            valid, failed, tokens, truncated=truncated & self.rejection.enabled, no_signal=no_signal
        )

    def _recount_num_items(self, batch_encoded_inputs: list[dict]) -> None:
        """The token normaliser of dapo-style losses, counted again over the kept rows."""
        local = sum(
            float(e["grpo_batch"].completion_mask.sum().item()) for e in batch_encoded_inputs
        )
        total = sum(gather_object([local]))
        for encoded in batch_encoded_inputs:
            batch = encoded["grpo_batch"]
            device = batch.completion_mask.device
            batch.num_items_in_batch = torch.tensor(max(total, 1.0), device=device)

    def _compute_advantages(
        self, samples: list[Any], rewards_per_func: torch.Tensor, batch_encoded_inputs: list[dict]
    ) -> torch.Tensor:
        stock = super()._compute_advantages(samples, rewards_per_func, batch_encoded_inputs)
        if self._keep is None:
            return stock
        # Other estimators, scalings and kl_in_reward were refused at start (`compatibility`).
        weighted = (rewards_per_func * self.reward_weights.unsqueeze(0)).nansum(dim=1)
        result = masked_group_advantages(
            weighted.detach().float().cpu().numpy(),
            self._keep,
            self.num_generations,
            estimator=self.advantage_estimator,
            scale=self.scale_rewards,
        )
        self._row_mask, self._groups_skipped = result.mask, result.groups_skipped
        return torch.as_tensor(result.advantages, dtype=stock.dtype, device=stock.device)

    # metrics ------------------------------------------------------------------------------------

    def _log_step(
        self,
        valid: np.ndarray,
        failed: np.ndarray,
        local_tokens: int,
        *,
        truncated: np.ndarray,
        no_signal: np.ndarray,
    ) -> None:
        stats = FilterStats(
            completions=len(valid),
            valid=int(valid.sum()),
            groups=len(valid) // self.num_generations,
            groups_skipped=self._groups_skipped,
            truncated=int(truncated.sum()),
        )
        metrics = self._metrics["train"]
        counts = filter_metrics(stats, int(failed.sum()), no_signal=int(no_signal.sum()))
        for key, value in counts.items():
            metrics[key].append(value)
        now = time.monotonic()
        seconds, self._step_started = now - self._step_started, now
        tokens = sum(gather_object([local_tokens]))
        metrics[STEP_SECONDS].append(seconds)
        metrics[TOKENS_PER_SECOND].append(tokens / seconds if seconds > 0 else 0.0)
