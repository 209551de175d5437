"""The demo's dataset: the shipped PubTabNet examples as ms-swift rows with generated QA pairs.

Training rows carry the image, the recognition prompt and ``qa_pairs`` from
``trivia.dataset.qa_from_table``; validation rows also carry the ground-truth HTML as
``solution``, so TEDS and TEDS-S are computed during evaluation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trivia.dataset import pubtabnet_html, row_problems
from trivia.dataset.qa_from_table import qa_from_table
from trivia.engine.prompts import OTSL_PROMPT
from trivia.tables import html_to_otsl

__all__ = ["OTSL_PROMPT", "PreparedData", "first_rows_otsl", "prepare_dataset"]


@dataclass(frozen=True, slots=True)
class PreparedData:
    """Where the rows went and how many there are."""

    train: Path
    val: Path
    train_rows: int
    val_rows: int
    questions: int


def _row(record: dict[str, Any], images: Path, *, solution: bool) -> dict[str, Any] | None:
    html = pubtabnet_html(record["html"])
    pairs = qa_from_table(html)
    if not pairs:
        return None
    row: dict[str, Any] = {
        "messages": [
            {"role": "user", "content": OTSL_PROMPT},
            {"role": "assistant", "content": "<table></table>"},
        ],
        "images": [str((images / record["filename"]).resolve())],
        "qa_pairs": pairs,
    }
    if solution:
        row["solution"] = html
    problems = row_problems(row)
    if problems:
        raise ValueError(f"{record['filename']}: {'; '.join(problems)}")
    return row


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    path.write_text(text, encoding="utf-8")


def prepare_dataset(examples: Path, out: Path, *, val_rows: int = 4) -> PreparedData:
    """Write ``train.jsonl`` and ``val.jsonl`` under ``out`` from ``examples/examples.jsonl``.

    Tables for which no question can be generated are left out; the last ``val_rows`` usable
    tables become the validation set (with ``solution``), the rest the training set.
    """
    lines = (examples / "examples.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    usable = [r for r in records if _row(r, examples / "images", solution=False) is not None]
    if len(usable) <= val_rows:
        raise ValueError(f"{examples}: {len(usable)} usable tables, need more than {val_rows}")
    train = [_row(r, examples / "images", solution=False) for r in usable[:-val_rows]]
    val = [_row(r, examples / "images", solution=True) for r in usable[-val_rows:]]
    train_rows = [r for r in train if r is not None]
    val_rows_ = [r for r in val if r is not None]
    _write(out / "train.jsonl", train_rows)
    _write(out / "val.jsonl", val_rows_)
    questions = sum(len(r["qa_pairs"]) for r in train_rows + val_rows_)
    return PreparedData(
        out / "train.jsonl", out / "val.jsonl", len(train_rows), len(val_rows_), questions
    )


def first_rows_otsl(examples: Path, *, cells: int = 3, chars: int = 10) -> list[str]:
    """Short OTSL answers (a few cells of each table's first row) to warm a tiny model up with."""
    answers = []
    for line in (examples / "examples.jsonl").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        first_row = html_to_otsl(pubtabnet_html(json.loads(line)["html"])).split("<nl>")[0]
        parts = first_row.split("<")[1 : cells + 1]
        answers.append("".join("<" + part[: chars + 5] for part in parts) + "<nl>\n")
    return answers
