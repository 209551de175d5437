"""The demo's pieces that need no trainer: its dataset and held-out split, its log reader."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import yaml

from trivia.dataset import row_problems
from trivia.qa.lookup import answer_question
from trivia.tables import html_to_otsl, otsl_to_html
from trivia.trainer.demo import read_log, stop_process, swift_option
from trivia.trainer.demo_data import (
    CORNER,
    OTSL_PROMPT,
    corner_otsl,
    demo_tables,
    prepare_dataset,
)


def test_prepared_rows_are_valid_training_rows(tmp_path, examples):
    data = prepare_dataset(examples, tmp_path, val_rows=3)
    train = [json.loads(line) for line in data.train.read_text().splitlines()]
    val = [json.loads(line) for line in data.val.read_text().splitlines()]
    assert (len(train), len(val)) == (data.train_rows, data.val_rows)
    assert data.val_rows == 3 and data.train_rows >= 6
    for row in train + val:
        assert row_problems(row) == []
        assert row["messages"][0]["content"] == OTSL_PROMPT
    assert all("solution" in row for row in val)
    assert not any("solution" in row for row in train)
    assert data.questions == sum(len(r["qa_pairs"]) for r in train + val)
    assert [t.qa_pairs for t in data.train_tables] == [r["qa_pairs"] for r in train]
    assert [t.html for t in data.held_out_tables] == [r["solution"] for r in val]


def test_held_out_tables_are_never_trained_on(tmp_path, examples):
    """No held-out image or table reaches GRPO's rows or the warm start's targets."""
    data = prepare_dataset(examples, tmp_path, val_rows=3)
    train = [json.loads(line) for line in data.train.read_text().splitlines()]
    val = [json.loads(line) for line in data.val.read_text().splitlines()]
    held_images = {image for row in val for image in row["images"]}
    assert len(held_images) == 3
    assert held_images.isdisjoint(image for row in train for image in row["images"])
    assert held_images.isdisjoint(str(t.image) for t in data.train_tables)
    assert {t.otsl for t in data.held_out_tables}.isdisjoint(t.otsl for t in data.train_tables)
    train_questions = {(q["question"], q["answer"]) for row in train for q in row["qa_pairs"]}
    held_questions = {(q["question"], q["answer"]) for row in val for q in row["qa_pairs"]}
    assert held_questions and held_questions.isdisjoint(train_questions)


def test_corner_keeps_a_valid_grid_with_its_spans():
    otsl = (
        "<fcel>h<lcel><fcel>x<fcel>y<nl>\n<fcel>a<fcel>1<fcel>2<fcel>3<nl>\n"
        "<fcel>b<fcel>4<fcel>5<fcel>6<nl>\n<fcel>c<fcel>7<fcel>8<fcel>9<nl>\n"
    )
    corner = corner_otsl(otsl, 2, 3)
    assert corner == "<fcel>h<lcel><fcel>x<nl>\n<fcel>a<fcel>1<fcel>2<nl>\n"
    assert html_to_otsl(otsl_to_html(corner)) == corner
    assert corner_otsl(otsl, 9, 9) == otsl


def test_a_perfect_recognition_of_each_corner_answers_every_question(examples):
    """The reward can reach 1: each corner's OTSL, read back, answers all its questions."""
    tables = demo_tables(examples)
    assert len(tables) >= 9
    for table in tables:
        assert table.otsl.count("<nl>") <= CORNER[0]
        html = otsl_to_html(table.otsl)
        assert all(answer_question(html, q["question"]) == q["answer"] for q in table.qa_pairs)


def test_the_corners_fit_the_demo_completion_length(examples):
    from trivia.trainer.tiny_model import build_tokenizer

    config = yaml.safe_load((examples.parents[1] / "configs" / "demo-cpu.yaml").read_text())
    limit = config["swift"]["max_completion_length"]
    tokenizer = build_tokenizer()
    for table in demo_tables(examples):
        ids = tokenizer(table.otsl + "<|im_end|>", add_special_tokens=False)["input_ids"]
        assert len(ids) <= limit, table.otsl


def test_read_log_splits_steps_and_evaluations(tmp_path):
    log = tmp_path / "logging.jsonl"
    rows = [
        {"reward": 0.5, "reward_std": 0.25, "rewards/QA_F1_score/mean": 0.5,
         "rejection_sampling/valid_rate": 0.75, "global_step/max_steps": "1/2", "step_time": 3.0},
        {"eval_reward": 0.1, "eval_teds": 0.4, "global_step/max_steps": "2/2"},
        {"reward": 0.25, "global_step/max_steps": "2/2"},
        {"train_runtime": 9.0},
    ]  # fmt: skip
    log.write_text("\n".join(json.dumps(r) for r in rows) + "\n{partial")
    steps, evals = read_log(log)
    assert [(s.step, s.reward, s.reward_std, s.qa_f1, s.valid_rate) for s in steps] == [
        (1, 0.5, 0.25, 0.5, 0.75),
        (2, 0.25, None, None, None),
    ]
    assert evals == [{"eval_reward": 0.1, "eval_teds": 0.4, "step": 2}]
    assert read_log(tmp_path / "missing.jsonl") == ([], [])


def test_swift_option_takes_the_last_value():
    argv = ["--temperature", "1.0", "--max_steps", "4", "--temperature", "0.7"]
    assert swift_option(argv, "temperature", "9") == "0.7"
    assert swift_option(argv, "top_p", "1.0") == "1.0"


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"  # a zombie is dead
    except FileNotFoundError:
        return True


def test_stopping_the_trainer_stops_its_children_even_if_they_ignore_sigterm():
    """`swift rlhf` runs the trainer as a child: interrupting the demo must stop both."""
    child = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(120)"
    )
    launcher = (
        "import subprocess, sys, time; "
        f"c = subprocess.Popen([sys.executable, '-c', {child!r}], stdout=subprocess.PIPE, "
        "text=True); assert c.stdout.readline() == 'ready\\n'; "
        "print(c.pid, flush=True); time.sleep(120)"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", launcher],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    trainer = int(process.stdout.readline())  # both run, the trainer ignores SIGTERM
    stop_process(process, grace_s=0.2)
    assert process.returncode is not None
    while not _gone(trainer):  # SIGKILL is delivered asynchronously
        time.sleep(0.05)
    process.stdout.close()
