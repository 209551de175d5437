from __future__ import annotations

import json
from pathlib import Path

import pytest

from trivia.dataset import row_problems, validate_jsonl
from trivia.engine.prompts import HTML_PROMPT, OTSL_PROMPT
from trivia.engine.qa_dataset import (
    PLACEHOLDER_ANSWER,
    read_selected,
    recognitions,
    training_row,
    write_dataset,
)
from trivia.engine.store import ResultStore

IMAGE = Path(__file__).resolve().parents[2] / "examples/pubtabnet/images/PMC4840965_004_00.png"
PAIRS = [{"question": "What is the hazard ratio of Male?", "answer": "1.000"}]


def test_selected_records_name_their_images_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "sel.jsonl").write_text(
        '{"image": "imgs/a.png", "outputs": []}\n\n{"image": "/abs/b.png"}\n', encoding="utf-8"
    )
    records = read_selected(tmp_path / "sel.jsonl")
    assert [r["image"] for r in records] == [str(tmp_path / "imgs" / "a.png"), "/abs/b.png"]
    for text, line in (('{"outputs": []}', 1), ("not json", 1)):
        (tmp_path / "bad.jsonl").write_text(text + "\n", encoding="utf-8")
        with pytest.raises(ValueError, match=rf"bad\.jsonl:{line}"):
            read_selected(tmp_path / "bad.jsonl")


def test_recognitions_in_either_record_shape() -> None:
    sampled = {"outputs": [{"text": "<fcel>a<nl>", "valid": True}, {"text": "", "valid": False}]}
    assert recognitions(sampled) == (["<fcel>a<nl>", ""], [True, False])
    plain = {"outputs": ["<fcel>a<nl>", "x"], "valid": [False, True]}
    assert recognitions(plain) == (["<fcel>a<nl>", "x"], [False, True])
    assert recognitions({"outputs": ["<fcel>a<nl>"]}) == (["<fcel>a<nl>"], None)
    assert recognitions({}) == ([], [])


@pytest.mark.parametrize(("fmt", "prompt"), [("otsl", OTSL_PROMPT), ("html", HTML_PROMPT)])
def test_a_training_row_asks_for_the_format_the_images_were_sampled_in(
    fmt: str, prompt: str
) -> None:
    row = training_row({"image": str(IMAGE), "format": fmt, "qa_pairs": PAIRS})
    assert row["messages"] == [
        {"role": "user", "content": prompt},
        {"role": "assistant", "content": PLACEHOLDER_ANSWER},
    ]
    assert row["images"] == [str(IMAGE)] and row["qa_pairs"] == PAIRS
    assert row_problems(row) == []


def test_the_dataset_holds_the_named_records_with_questions_once(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "progress.jsonl") as store:
        store.write({"key": "a", "image": str(IMAGE), "qa_pairs": PAIRS})
        store.write({"key": "empty", "image": str(IMAGE), "qa_pairs": []})
        store.write({"key": "other-settings", "image": str(IMAGE), "qa_pairs": PAIRS})
        out = tmp_path / "out" / "dataset.jsonl"
        used: list[dict] = []
        rows = write_dataset(store, ["a", "empty", "a", "missing"], out, on_record=used.append)
    assert rows == 1 and [r["key"] for r in used] == ["a", "empty"]
    report = validate_jsonl(out)
    assert report.ok and report.good_rows == 1
    assert json.loads(out.read_text(encoding="utf-8"))["qa_pairs"] == PAIRS
    assert not (tmp_path / "out" / "dataset.jsonl.partial").exists()
