"""Validation TEDS / TEDS-S of completions against ground truth, raw and normalised."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trivia.cli import app
from trivia.trainer.datasets import DatasetError, check_validation_file, local_files
from trivia.trainer.validation import (
    TableScores,
    ground_truth,
    mean_scores,
    table_scores,
    with_ground_truth,
)

TRUTH = "<table><tr><td>a</td><td>b</td></tr><tr><td>1</td><td>2</td></tr></table>"
HEADED = (
    "<table><thead><tr><th>a</th><th>b</th></tr></thead>"
    "<tbody><tr><td>1</td><td>2</td></tr></tbody></table>"
)
PERFECT = "<fcel>a<fcel>b<nl>\n<fcel>1<fcel>2<nl>\n"


def test_a_perfect_otsl_completion_scores_one():
    assert table_scores(PERFECT, TRUTH) == TableScores(1.0, 1.0, 1.0, 1.0)


def test_a_perfect_otsl_completion_scores_one_normalised_against_a_header_section():
    # OTSL cannot say <thead>/<th>: raw TEDS punishes what the policy cannot express.
    scores = table_scores(PERFECT, HEADED)
    assert scores is not None
    assert scores.teds < 0.8
    assert scores.teds_structure < 0.8
    assert (scores.teds_norm, scores.teds_structure_norm) == (1.0, 1.0)


def test_wrong_text_lowers_teds_but_not_teds_s():
    scores = table_scores("<fcel>a<fcel>b<nl>\n<fcel>1<fcel>9<nl>\n", TRUTH)
    assert scores is not None
    assert scores.teds < 1.0 and scores.teds_norm < 1.0
    assert scores.teds_structure == scores.teds_structure_norm == 1.0


def test_html_completions_are_scored_too():
    assert table_scores(TRUTH, TRUTH) == TableScores(1.0, 1.0, 1.0, 1.0)


def test_mean_skips_unscored():
    mean = mean_scores([TableScores(1.0, 1.0, 1.0, 1.0), None, TableScores(0.5, 0.0, 0.7, 0.2)])
    assert mean == TableScores(*map(pytest.approx, (0.75, 0.5, 0.85, 0.6)))
    assert mean_scores([None]) is None


def _row(assistant: str | None, **extra) -> dict:
    messages = [{"role": "user", "content": "<image>Recognise the table."}]
    if assistant is not None:
        messages.append({"role": "assistant", "content": assistant})
    return {"messages": messages, "images": ["t.png"], **extra}


def test_ground_truth_is_the_solution_else_the_last_assistant_turn():
    assert ground_truth(_row(HEADED, solution=TRUTH)) == TRUTH
    assert ground_truth(_row(HEADED)) == HEADED
    assert (
        ground_truth(_row(PERFECT))
        == "<table><tr><td>a</td><td>b</td></tr><tr><td>1</td><td>2</td></tr></table>"
    )
    for placeholder in (None, "", "<table></table>", "Recognise it."):
        assert ground_truth(_row(placeholder)) is None


def test_with_ground_truth_copies_the_assistant_turn_into_solution_without_touching_the_row():
    row = _row(HEADED)
    filled = with_ground_truth(row)
    assert filled["solution"] == HEADED
    assert "solution" not in row
    assert with_ground_truth(_row(None)) == _row(None)


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_a_validation_file_without_ground_truth_is_refused_naming_file_and_line(tmp_path):
    good = _write(tmp_path / "good.jsonl", [_row(HEADED), _row("x", solution=TRUTH)])
    check_validation_file(good)
    bad = _write(tmp_path / "bad.jsonl", [_row(HEADED), _row("<table></table>")])
    with pytest.raises(DatasetError, match=rf"^{bad}:2: validation row has no ground truth"):
        check_validation_file(bad)
    assert list(local_files([f"{bad}#10", "AI-ModelScope/some-hub-set", str(tmp_path)])) == [bad]


def test_trivia_train_refuses_to_start_on_such_a_validation_set(tmp_path):
    bad = _write(tmp_path / "val.jsonl", [_row(HEADED), _row(HEADED), _row(None)])
    config = tmp_path / "run.yaml"
    config.write_text(
        f"swift:\n  rlhf_type: grpo\n  model: nowhere\n  dataset: {bad}\n  val_dataset: {bad}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["train", "--config", str(config)])
    assert result.exit_code != 0
    assert f"{bad}:3: validation row has no ground truth" in result.output
