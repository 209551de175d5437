"""Checking a dataset file reports every bad row as `file:line: reason`."""

from __future__ import annotations

import json
from pathlib import Path

from trivia.dataset.validate import Problem, missing_images, validate_jsonl


def _row(image: str = "images/a.png", answer: object = "42") -> str:
    return json.dumps(
        {
            "messages": [
                {"role": "user", "content": "<image>Convert this table."},
                {"role": "assistant", "content": "<placeholder>"},
            ],
            "images": [image],
            "qa_pairs": [{"question": "How many?", "answer": answer}],
        }
    )


def _dataset(folder: Path, lines: list[str]) -> Path:
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "images" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    path = folder / "train.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_good_file_counts_its_rows(tmp_path: Path) -> None:
    path = _dataset(tmp_path, [_row(), "", _row("images/b.png")])
    (tmp_path / "images" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\nb")
    report = validate_jsonl(path)
    assert report.ok
    assert (report.good_rows, report.bad_rows, report.problems) == (2, 0, [])


def test_a_second_row_for_the_same_image_is_refused_naming_both_lines(tmp_path: Path) -> None:
    path = _dataset(tmp_path, [_row(), _row(str(tmp_path / "images" / "a.png"))])
    report = validate_jsonl(path)
    assert not report.ok and (report.good_rows, report.bad_rows) == (1, 1)
    (problem,) = report.problems
    assert problem.line == 2 and "the same image as line 1" in problem.reason
    copy = tmp_path / "images" / "copy.png"  # the same content under another name
    copy.write_bytes((tmp_path / "images" / "a.png").read_bytes())
    other = tmp_path / "images" / "other.png"  # same size, other content
    other.write_bytes(b"\x89PNG\r\n\x1a\x00")
    path = _dataset(tmp_path, [_row(), _row("images/other.png"), _row("images/copy.png")])
    problems = validate_jsonl(path).problems
    assert [(p.line, "line 1" in p.reason) for p in problems] == [(3, True)]


def test_every_bad_row_is_reported_with_its_line(tmp_path: Path) -> None:
    path = _dataset(
        tmp_path,
        [
            _row(),
            '{"messages": [',
            _row(image="images/missing.png"),
            _row(answer=""),
            "[]",
            _row("images/b.png"),
        ],
    )
    (tmp_path / "images" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\nb")
    report = validate_jsonl(path)
    assert not report.ok
    assert (report.good_rows, report.bad_rows) == (2, 4)
    assert [str(p) for p in report.problems] == [
        f"{path}:2: invalid JSON: Expecting value (column 15)",
        f"{path}:3: image not found: images/missing.png",
        f"{path}:4: qa_pairs[0].answer: must not be empty",
        f"{path}:5: row is not a JSON object",
    ]


def test_bytes_that_are_not_utf8_are_a_bad_row(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b'{"messages": "\xff"}\n')
    report = validate_jsonl(path, display_name="rows.jsonl")
    assert report.problems == [Problem("rows.jsonl", 1, "not valid UTF-8")]


def test_images_resolve_against_the_given_folder(tmp_path: Path) -> None:
    (tmp_path / "here.png").write_bytes(b"")
    (tmp_path / "folder.png").mkdir()
    images = ["here.png", str(tmp_path / "here.png"), "gone.png", "folder.png"]
    assert missing_images(images, tmp_path) == ["gone.png", "folder.png"]
