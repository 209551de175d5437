from pathlib import Path

import pytest

from trivia.dataset.jsonl import json_lines


class Custom(ValueError):
    pass


def test_blank_lines_are_skipped_and_numbers_count_them(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n\n  \n[2]\n', encoding="utf-8")
    assert list(json_lines(path)) == [(1, {"a": 1}), (4, [2])]


def test_a_line_that_is_not_json_is_named_with_the_error_type_asked_for(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n{oops\n', encoding="utf-8")
    with pytest.raises(Custom, match=r"rows\.jsonl:2: invalid JSON: "):
        list(json_lines(path, Custom))
