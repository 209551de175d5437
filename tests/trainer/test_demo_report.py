"""The demo's before/after scoring and its report (curves, summary), without a trainer."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from trivia.trainer.demo import DemoResult, StepRow
from trivia.trainer.demo_data import demo_tables
from trivia.trainer.demo_eval import Decoding, SplitScores, qa_f1_scores, score_split
from trivia.trainer.demo_report import summary, summary_table, write_curves, write_summary

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_a_perfect_recognition_scores_one_and_an_empty_one_near_zero(examples):
    tables = demo_tables(examples)[:3]
    perfect = score_split(tables, [[t.otsl] for t in tables], [1.0] * 3)
    assert perfect == SplitScores(1.0, 1.0, 1.0, 1.0, 1.0, 3)
    empty = score_split(tables, [["", "no table here"] for _ in tables], [0.0] * 6)
    assert empty.completions == 6
    # Only the <table> root matches, one node of each corner's tree.
    assert 0 < empty.teds <= empty.teds_s < 0.15
    assert (empty.teds_normalised, empty.teds_s_normalised) == (empty.teds, empty.teds_s)


def test_normalised_teds_ignores_what_the_benchmarks_normalise(examples):
    """Header cells and bold text cost raw TEDS but not TEDS after normalize_html."""
    table = next(t for t in demo_tables(examples) if "<fcel>Date" in t.otsl)
    html = table.html.replace("<td>", "<th><b>").replace("</td>", "</b></th>")
    scores = score_split([table], [[html]], [1.0])
    assert scores.teds < 1.0
    assert scores.teds_normalised == pytest.approx(1.0)
    assert scores.teds_s_normalised == pytest.approx(1.0)


def test_scores_need_one_qa_f1_per_completion(examples):
    tables = demo_tables(examples)[:2]
    with pytest.raises(ValueError, match="QA-F1"):
        score_split(tables, [["a", "b"], ["c"]], [0.0, 0.0])


def test_an_unreachable_reward_service_is_an_error_not_a_zero(examples, monkeypatch):
    monkeypatch.setenv("TRIVIA_REWARD_TIMEOUT_S", "0.5")
    tables = demo_tables(examples)[:1]
    with pytest.raises(RuntimeError, match="1 completions unscored"):
        qa_f1_scores("http://127.0.0.1:9", tables, [[tables[0].otsl]])


def test_decoding_labels():
    assert Decoding().label == "greedy"
    assert Decoding(temperature=1.0, samples=8).label == "T=1, 8 samples"


def _result() -> DemoResult:
    steps = [
        StepRow(step, 0.1 * step, 0.05, 0.1 * step, 0.75, step % 2, 0.0, 3.0)
        for step in range(1, 9)
    ]
    evals = [
        {"eval_reward": 0.1, "eval_teds": 0.2 + step / 100, "eval_teds_s": 0.5, "step": step}
        for step in (0, 4, 8)
    ]
    before = SplitScores(0.25, 0.5, 0.25, 0.5, 0.0, 3)
    after = SplitScores(0.5, 0.75, 0.5, 0.75, 0.125, 3)
    return DemoResult(
        steps=steps,
        evals=evals,
        held_out={"greedy": {"warm start": before, "GRPO": after}},
        held_out_tables=3,
        trained_on={"greedy": {"warm start": after, "GRPO": before}},
        trained_on_tables=7,
        seed=7,
    )


def test_the_curves_are_drawn_to_a_png(tmp_path):
    pytest.importorskip("matplotlib", reason="a train-extra dependency")
    path = write_curves(_result(), tmp_path / "demo" / "curves.png")
    assert path == tmp_path / "demo" / "curves.png"
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert path.stat().st_size > 10_000  # four panels, not an empty canvas


def test_the_summary_is_written_and_shown_as_a_table(tmp_path):
    data = summary(_result(), window=2)
    assert data["seed"] == 7 and data["steps"] == 8 and data["held_out_tables"] == 3
    assert data["training_reward"] == {"window": 2, "first": pytest.approx(0.15), "last": 0.75}
    assert [e["step"] for e in data["held_out_evaluations"]] == [0, 4, 8]
    assert data["held_out"]["greedy"]["GRPO"]["qa_f1"] == 0.125
    assert data["trained_on_tables"] == 7
    assert data["trained_on"]["greedy"]["GRPO"]["qa_f1"] == 0.0
    path = write_summary(data, tmp_path / "summary.json")
    assert json.loads(path.read_text()) == data
    console = Console(record=True, width=140)
    console.print(summary_table(data, "demo"))
    text = console.export_text()
    assert "TEDS-S, normalised" in text
    for line in ("│ TEDS ", "│ QA-F1 "):
        rows = [row for row in text.splitlines() if row.startswith(line)]
        assert ["held-out (3)" in row for row in rows] == [True, False]
        assert ["trained on (7)" in row for row in rows] == [False, True]
        assert all("greedy" in row for row in rows)
    assert "+0.250" in text and "+0.125" in text and "+0.600" in text
    assert "-0.250" in text and "-0.125" in text  # the trained-on split, which got worse here


def test_a_missing_after_score_shows_as_a_dash():
    result = _result()
    result.held_out["greedy"].pop("GRPO")
    console = Console(record=True, width=140)
    console.print(summary_table(summary(result), "demo"))
    teds_row = next(r for r in console.export_text().splitlines() if r.startswith("│ TEDS "))
    assert teds_row.count("-") >= 2


def test_the_training_reward_is_compared_over_a_fifth_of_the_steps():
    """One step's reward (2 tables) is mostly noise: short runs use 5 steps, long ones a fifth."""
    result = _result()
    assert summary(result)["training_reward"]["window"] == 5
    result.steps = [
        StepRow(step, step / 100, None, None, None, None, None, None) for step in range(1, 101)
    ]
    reward = summary(result)["training_reward"]
    assert reward["window"] == 20
    assert reward["first"] == pytest.approx(0.105) and reward["last"] == pytest.approx(0.905)
