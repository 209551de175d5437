"""`select_file`: one row per image (its latest record), the chosen lines copied in file order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trivia.engine.select_file import select_file
from trivia.engine.selection import SelectionRule


def _line(image: str, consistency: float, key: str = "") -> str:
    return json.dumps({"image": image, "key": key or image, "consistency": consistency})


def test_the_latest_record_of_an_image_counts_and_lines_keep_the_file_order(tmp_path: Path):
    samples = tmp_path / "samples.jsonl"
    samples.write_text(
        "\n".join(
            [
                _line("a", 0.1, "a-old"),  # below the band: superseded by the later record
                _line("b", 0.6),
                "",
                _line("c", 0.7),
                _line("a", 0.8, "a-new"),
            ]
        )  # no newline after the last record
    )
    out = tmp_path / "chosen" / "selected.jsonl"

    result = select_file(samples, out, SelectionRule("band", n=10, low=0.5, high=1.0))

    assert result.superseded == 1
    assert result.consistencies == [0.6, 0.7, 0.8]  # b, c, then a where its latest record is
    lines = out.read_text().splitlines(keepends=True)
    assert [json.loads(line)["key"] for line in lines] == ["b", "c", "a-new"]
    assert all(line.endswith("\n") for line in lines)
    assert not out.with_name(out.name + ".partial").exists()


def test_a_line_that_is_not_a_sample_record_is_refused_with_its_number(tmp_path: Path):
    samples = tmp_path / "samples.jsonl"
    samples.write_text(_line("a", 0.5) + "\n" + json.dumps({"image": "b"}) + "\n")
    out = tmp_path / "selected.jsonl"
    with pytest.raises(ValueError, match=r"samples\.jsonl:2: not a sample record"):
        select_file(samples, out, SelectionRule("band", n=1))
    assert not out.exists()
