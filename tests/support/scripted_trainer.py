"""A plugin for `swift rlhf --external_plugins` that scripts what the policy "generated".

It registers the project's plugin, then points `grpo` at a subclass of the filtering trainer
that, after each real rollout, replaces every completion's text and finish reason by the one the
script gives for its dataset row (column ``case``) and position in the group, and writes the
batch tensors the filter produced (advantages, completion masks) to ``TRIVIA_TEST_DUMP``. Only
the policy's sampling is scripted: the rewards come from the real reward stack over HTTP, and
the loss, advantages and masks from the real ms-swift step.

The script (``TRIVIA_TEST_SCRIPT``, JSON): ``{"case": [[text, finish_reason] per generation]}``,
or ``{"steps": [script per step]}`` to change it from one step to the next.
"""

from __future__ import annotations

import json
import os
from typing import Any

from swift.trainers import TrainerFactory

import trivia.trainer.plugin  # noqa: F401  (registers the rewards)
from trivia.trainer.grpo_trainer import FilteringGRPOTrainer

TrainerFactory.TRAINER_MAPPING["grpo"] = "tests.support.scripted_trainer.ScriptedGRPOTrainer"


def _script(step: int) -> dict[str, list[list[str]]]:
    script = json.loads(os.environ["TRIVIA_TEST_SCRIPT"])
    if "steps" in script:
        steps = script["steps"]
        return steps[min(step, len(steps) - 1)]
    return script


class ScriptedGRPOTrainer(FilteringGRPOTrainer):
    """The filtering trainer with scripted completions and the batch tensors written out."""

    def _rollout_samples(self, inputs: list[dict[str, Any]]) -> list[Any]:
        samples = super()._rollout_samples(inputs)
        if self._mode != "train":
            return samples
        script = _script(self.state.global_step)
        seen: dict[str, int] = {}
        for sample in samples:
            case = sample.extra["case"]
            k = seen[case] = seen.get(case, -1) + 1
            text, finish = script[case][k]
            # Token ids as the sampler gives them: the text, then <|im_end|> unless cut off.
            tokenizer = self.template.tokenizer
            ids = tokenizer.encode(text, add_special_tokens=False)
            if finish == "stop":
                ids.append(tokenizer.convert_tokens_to_ids("<|im_end|>"))
            sample.messages[-1] = {"role": "assistant", "content": text}
            sample.response_token_ids = ids
            sample.response_loss_mask = []
            sample.rollout_logprobs = []
            sample.finish_reason = finish
        return samples

    def _postprocess_batch(self, samples: list[Any], batch_encoded_inputs: list[dict]) -> None:
        super()._postprocess_batch(samples, batch_encoded_inputs)
        if self._mode != "train":
            return
        rows: list[dict[str, Any]] = []
        for encoded in batch_encoded_inputs:
            batch = encoded["grpo_batch"]
            advantages = batch.advantages.reshape(batch.advantages.shape[0], -1)[:, 0]
            for advantage, mask in zip(
                advantages.tolist(), batch.completion_mask.sum(-1).tolist(), strict=True
            ):
                rows.append({"advantage": advantage, "mask_tokens": mask})
        rewards = self._rewards_per_func.detach().float().cpu().tolist()
        seen: dict[str, int] = {}
        for row, sample, reward in zip(rows, samples, rewards, strict=True):
            case = sample.extra["case"]
            row["case"], row["k"] = case, seen.setdefault(case, -1) + 1
            seen[case] += 1
            row["reward"] = reward[0]
        with open(os.environ["TRIVIA_TEST_DUMP"], "a", encoding="utf-8") as out:
            out.write(json.dumps({"step": self.state.global_step, "rows": rows}) + "\n")
