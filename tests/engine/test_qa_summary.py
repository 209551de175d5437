"""The `trivia data qa` summary: every image in the file, only a few of them in memory."""

from __future__ import annotations

import json
from pathlib import Path

from trivia.engine.qa_pipeline import QASettings
from trivia.engine.qa_summary import SummaryBuilder
from trivia.engine.runner import RunSummary


def _record(number: int) -> dict[str, object]:
    return {
        "key": f"key-{number}",
        "image": f"/images/{number}.png",
        "candidates": 3,
        "verified": 2,
        "qa_pairs": [{"question": "q", "answer": "a"}] * (number % 2),
        "rounds": 1,
        "drops": {"wrong": 1},
        "table": {"rows": 4, "cols": 3},
        "coverage": {"rows": 1, "cols": 1, "row_share": 0.25, "col_share": 0.3333},
    }


def _write(builder: SummaryBuilder, path: Path) -> dict[str, object]:
    head = builder.summary(
        RunSummary(done=builder.images), QASettings(), {}, paths={"output": path}, rows=0
    )
    builder.write(path, head)
    return json.loads(path.read_text(encoding="utf-8"))


def test_every_image_is_written_while_only_the_first_are_held(tmp_path: Path) -> None:
    builder = SummaryBuilder(keep_first=2)
    for number in range(25):
        builder.add(_record(number))
    assert [entry["key"] for entry in builder.first] == ["key-0", "key-1"]
    summary = _write(builder, tmp_path / "summary.json")
    assert [entry["key"] for entry in summary["per_image"]] == [f"key-{n}" for n in range(25)]
    assert summary["per_image"][3]["kept"] == 1 and summary["per_image"][4]["kept"] == 0
    assert summary["per_image"][0]["coverage"]["col_share"] == 0.3333
    assert (summary["images"], summary["kept"], summary["drops"]) == (25, 12, {"wrong": 25})
    assert summary["settings"]["per_image"] == QASettings().per_image


def test_a_summary_of_no_images_is_valid_json(tmp_path: Path) -> None:
    summary = _write(SummaryBuilder(), tmp_path / "summary.json")
    assert summary["per_image"] == [] and summary["images"] == 0
