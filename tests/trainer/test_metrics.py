"""Step metrics and the trivia_train_* Prometheus endpoint."""

from __future__ import annotations

import httpx
import pytest

from trivia.ports import free_port
from trivia.trainer.filtering import FilterStats
from trivia.trainer.metrics import (
    FAILED,
    GROUPS_SKIPPED,
    REJECTION_RATE,
    VALID_RATE,
    TrainMetricsExporter,
    filter_metrics,
)


def test_filter_metrics_names_and_values():
    metrics = filter_metrics(FilterStats(completions=8, valid=6, groups=4, groups_skipped=1), 2)
    assert metrics[VALID_RATE] == 0.75
    assert metrics[REJECTION_RATE] == 0.25
    assert metrics[GROUPS_SKIPPED] == 1.0
    assert metrics[FAILED] == 2.0
    assert metrics["reward_failures/rate"] == 0.25


def _sample(text: str, line_start: str) -> float:
    lines = [line for line in text.splitlines() if line.startswith(line_start)]
    assert lines, f"{line_start} not exported"
    return float(lines[0].rsplit(" ", 1)[1])


def test_exporter_serves_logged_values_over_http():
    exporter = TrainMetricsExporter()
    port = free_port()
    exporter.serve(port)
    logs = {
        "reward": 0.4,
        "rewards/QA_F1_score/mean": 0.4,
        "rewards/QA_F1_score/std": 0.1,
        "eval_rewards/QA_F1_score/mean": 0.9,
        VALID_RATE: 0.75,
        REJECTION_RATE: 0.25,
        GROUPS_SKIPPED: 1.0,
        FAILED: 3.0,
        "trivia/step_seconds": 2.5,
        "trivia/tokens_per_second": 40.0,
        "global_step/max_steps": "1/2",
    }
    exporter.observe(logs, step=1)
    evaluation = {"eval_teds": 0.5, "eval_teds_s": 0.8, "eval_teds_norm": 0.9}
    exporter.observe({FAILED: 2.0, **evaluation, "eval_teds_s_norm": 1.0}, step=2)
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert _sample(text, "trivia_train_step ") == 2.0
    assert _sample(text, 'trivia_train_reward_mean{func="QA_F1_score"}') == pytest.approx(0.4)
    assert _sample(text, 'trivia_train_reward_std{func="QA_F1_score"}') == pytest.approx(0.1)
    assert _sample(text, "trivia_train_valid_rate ") == 0.75
    assert _sample(text, "trivia_train_rejection_rate ") == 0.25
    assert _sample(text, "trivia_train_groups_skipped ") == 1.0
    assert _sample(text, "trivia_train_reward_failures_total ") == 5.0
    assert _sample(text, "trivia_train_step_seconds ") == 2.5
    assert _sample(text, "trivia_train_tokens_per_second ") == 40.0
    assert _sample(text, "trivia_train_eval_teds ") == 0.5
    assert _sample(text, "trivia_train_eval_teds_s ") == 0.8
    assert _sample(text, "trivia_train_eval_teds_norm ") == 0.9
    assert _sample(text, "trivia_train_eval_teds_s_norm ") == 1.0
