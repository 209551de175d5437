"""The demo's pieces that need no trainer: its dataset, its log reader, its port picking."""

from __future__ import annotations

import json

from trivia.dataset import row_problems
from trivia.trainer.demo import read_log
from trivia.trainer.demo_data import OTSL_PROMPT, first_rows_otsl, prepare_dataset


def test_prepared_rows_are_valid_training_rows(tmp_path, examples):
    data = prepare_dataset(examples, tmp_path, val_rows=3)
    train = [json.loads(line) for line in data.train.read_text().splitlines()]
    val = [json.loads(line) for line in data.val.read_text().splitlines()]
    assert (len(train), len(val)) == (data.train_rows, data.val_rows)
    assert data.val_rows == 3 and data.train_rows >= 8
    for row in train + val:
        assert row_problems(row) == []
        assert row["messages"][0]["content"] == OTSL_PROMPT
    assert all("solution" in row for row in val)
    assert not any("solution" in row for row in train)
    assert data.questions == sum(len(r["qa_pairs"]) for r in train + val)


def test_warm_start_answers_are_short_complete_otsl(examples):
    answers = first_rows_otsl(examples)
    assert len(answers) == 20
    assert all(a.endswith("<nl>\n") and a.count("<nl>") == 1 for a in answers)


def test_read_log_splits_steps_and_evaluations(tmp_path):
    log = tmp_path / "logging.jsonl"
    rows = [
        {"reward": 0.5, "rewards/QA_F1_score/mean": 0.5, "rejection_sampling/valid_rate": 0.75,
         "global_step/max_steps": "1/2", "step_time": 3.0},
        {"eval_reward": 0.1, "eval_teds": 0.4, "global_step/max_steps": "2/2"},
        {"reward": 0.25, "global_step/max_steps": "2/2"},
        {"train_runtime": 9.0},
    ]  # fmt: skip
    log.write_text("\n".join(json.dumps(r) for r in rows) + "\n{partial")
    steps, evals = read_log(log)
    assert [(s.step, s.reward, s.qa_f1, s.valid_rate) for s in steps] == [
        (1, 0.5, 0.5, 0.75),
        (2, 0.25, None, None),
    ]
    assert evals == [{"eval_reward": 0.1, "eval_teds": 0.4, "step": 2}]
    assert read_log(tmp_path / "missing.jsonl") == ([], [])
