"""Two real GRPO steps on CPU: tiny model, generated QA pairs, local reward stack, the plugin."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("swift", reason="needs the train extra (torch, ms-swift)")

from trivia.trainer.demo import run_demo
from trivia.trainer.metrics import GROUPS_SKIPPED, REJECTION_RATE, VALID_RATE

CONFIG_EXTRA = ["--max_steps", "2", "--max_completion_length", "16", "--eval_steps", "2"]


def test_two_steps_log_rewards_and_filter_metrics(tmp_path, examples):
    lines: list[str] = []
    config = examples.parents[1] / "configs" / "demo-cpu.yaml"
    result = run_demo(
        tmp_path / "demo",
        config,
        examples,
        extra=CONFIG_EXTRA,
        warm_start_steps=10,
        workers=1,
        say=lines.append,
    )
    assert result.returncode == 0, (result.train_log.read_text()[-3000:], lines)
    rows = [json.loads(line) for line in result.log.read_text().splitlines()]
    steps = [r for r in rows if "reward" in r]
    assert len(steps) == 2
    for row in steps:
        assert 0.0 <= row["rewards/QA_F1_score/mean"] <= 1.0
        assert row[VALID_RATE] + row[REJECTION_RATE] == pytest.approx(1.0)
        assert 0 <= row[GROUPS_SKIPPED] <= 2
        assert row["reward_failures/count"] == 0  # the stack scored every completion
    evaluation = next(r for r in rows if "eval_reward" in r)
    assert 0.0 <= evaluation["eval_teds_s"] <= 1.0
    assert 0.0 <= evaluation["eval_teds"] <= evaluation["eval_teds_s"] + 1e-9
    assert any(line.startswith("step 2:") for line in lines)
    # The trainer's log says where the reward inspector shows each step's batches.
    assert "/inspect?step=2" in result.train_log.read_text()
