"""`trivia data validate` reports bad rows and sets the exit code."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from trivia.cli import app

runner = CliRunner()
TRIVIA = Path(sys.executable).parent / "trivia"


def _row(image: str) -> str:
    return json.dumps(
        {
            "messages": [{"role": "user", "content": "<image>Convert this table."}],
            "images": [image],
            "qa_pairs": [{"question": "How many?", "answer": "3"}],
        }
    )


def _dataset(tmp_path: Path, pubtabnet: Path, *extra: str) -> Path:
    """Two good rows: one image by absolute path, one (another image) relative to the file's
    folder."""
    image = pubtabnet / "images" / "PMC1626454_002_00.png"
    (tmp_path / "images").mkdir()
    shutil.copy(pubtabnet / "images" / "PMC2753619_002_00.png", tmp_path / "images" / "table.png")
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join([_row(str(image)), _row("images/table.png"), *extra]) + "\n")
    return path


def test_a_good_file_prints_the_count(tmp_path: Path, pubtabnet: Path) -> None:
    path = _dataset(tmp_path, pubtabnet)
    result = runner.invoke(app, ["data", "validate", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"2 good rows in {path}\n"


def test_bad_rows_are_listed_and_the_exit_code_is_one(tmp_path: Path, pubtabnet: Path) -> None:
    path = _dataset(tmp_path, pubtabnet, "not json", _row("nowhere.png"))
    completed = subprocess.run(
        [str(TRIVIA), "data", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 1
    assert completed.stdout.splitlines() == [
        f"{path}:3: invalid JSON: Expecting value (column 1)",
        f"{path}:4: image not found: nowhere.png",
    ]
    assert "2 bad and 2 good rows" in completed.stderr


def test_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "validate", str(tmp_path / "none.jsonl")])
    assert result.exit_code == 2
