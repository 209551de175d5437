"""Two real GRPO steps on CPU: tiny model, generated QA pairs, local reward stack, the plugin,
then the before/after scores on the held-out tables and the report."""

from __future__ import annotations

import json

import pytest
import yaml

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
        eval_samples=2,
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
    evaluations = [r for r in rows if "eval_reward" in r]
    assert [r["global_step/max_steps"].split("/")[0] for r in evaluations] == ["0", "2"]
    for evaluation in evaluations:
        assert 0.0 <= evaluation["eval_teds"] <= evaluation["eval_teds_s"] + 1e-9 <= 1.0 + 1e-9
    assert any(line.startswith("step 2:") for line in lines)

    # Before and after, on the held-out tables, greedy and sampled as in training.
    temperature = yaml.safe_load(config.read_text())["swift"]["temperature"]
    assert list(result.held_out) == ["greedy", f"T={temperature:g}, 2 samples"]
    for decoding, by_model in result.held_out.items():
        assert list(by_model) == ["warm start", "GRPO"], decoding
        for scores in by_model.values():
            assert scores.completions == 3 * (1 if decoding == "greedy" else 2)
            assert scores.teds <= scores.teds_s + 1e-9 <= 1.0 + 1e-9
            assert scores.teds_normalised <= scores.teds_s_normalised + 1e-9 <= 1.0 + 1e-9
            assert 0.0 <= scores.qa_f1 <= 1.0
    # And on the tables GRPO trained on, with the same decodings.
    trained_on = result.trained_on_tables
    assert trained_on > 0 and list(result.trained_on) == list(result.held_out)
    for decoding, by_model in result.trained_on.items():
        assert list(by_model) == ["warm start", "GRPO"], decoding
        assert by_model["GRPO"].completions == trained_on * (1 if decoding == "greedy" else 2)
    assert (tmp_path / "demo" / "swift" / "checkpoint-2" / "config.json").is_file()
    assert result.curves == tmp_path / "demo" / "curves.png"
    assert result.curves.read_bytes()[:4] == b"\x89PNG"
    summary = json.loads(result.summary.read_text())
    assert summary["steps"] == 2
    assert summary["held_out"]["greedy"]["GRPO"] == result.held_out["greedy"]["GRPO"].as_dict()
    assert summary["trained_on"]["greedy"]["GRPO"] == result.trained_on["greedy"]["GRPO"].as_dict()
    assert [e["step"] for e in summary["held_out_evaluations"]] == [0, 2]
    # The trainer's log says where the reward inspector shows each step's batches.
    assert "/inspect?step=2" in result.train_log.read_text()
