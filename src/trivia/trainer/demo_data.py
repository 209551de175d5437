"""The demo's dataset: the shipped PubTabNet examples as ms-swift rows with generated QA pairs.

Each table is cut to its top-left corner (``CORNER`` rows and columns, cells of at most
``LONGEST_CELL`` characters), small enough for a tiny model to learn on CPU in a few hundred
steps; its QA pairs come from ``trivia.dataset.qa_from_table`` on that corner, so every
question is answerable from it.
Training rows carry the image, the recognition prompt and ``qa_pairs``; held-out rows (ms-swift's
validation set) also carry the corner's HTML as ``solution``, so TEDS and TEDS-S are computed
during evaluation. The held-out tables are fixed (the last usable examples), never shown to the
warm start or to GRPO, and were set aside before any setting of the demo was chosen.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trivia.dataset import pubtabnet_html, row_problems
from trivia.dataset.qa_from_table import qa_from_table
from trivia.engine.prompts import OTSL_PROMPT
from trivia.tables import html_to_otsl, otsl_to_html
from trivia.tables.otsl import OTSL_TAG

CORNER = (3, 2)
LONGEST_CELL = 20
_SLOT = re.compile(r"<(?:fcel|ecel|lcel|ucel|xcel)>[^<]*")


@dataclass(frozen=True, slots=True)
class DemoTable:
    """One example cut to its corner: the image, the corner as OTSL and HTML, its QA pairs."""

    image: Path
    otsl: str
    html: str
    qa_pairs: list[dict[str, str]]


@dataclass(frozen=True, slots=True)
class PreparedData:
    """Where the rows went, how many there are, and the tables of each split."""

    train: Path
    val: Path
    train_rows: int
    val_rows: int
    questions: int
    train_tables: list[DemoTable]
    held_out_tables: list[DemoTable]


def corner_otsl(otsl: str, rows: int, cols: int) -> str:
    """The first ``rows`` rows and ``cols`` columns of an OTSL grid, still a valid grid.

    Every merge tag points left or up, so the slots kept never refer to a slot cut away.
    """
    lines = [line for line in otsl.split("<nl>") if line.strip()][:rows]
    return "".join("".join(_SLOT.findall(line)[:cols]) + "<nl>\n" for line in lines)


def demo_tables(
    examples: Path, corner: tuple[int, int] = CORNER, longest_cell: int = LONGEST_CELL
) -> list[DemoTable]:
    """The examples' table corners with short cells and at least one answerable question.

    Short cells keep the answers within a small ``max_completion_length``.
    """
    tables = []
    for line in (examples / "examples.jsonl").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        otsl = corner_otsl(html_to_otsl(pubtabnet_html(record["html"])), *corner)
        if max(len(text) for text in OTSL_TAG.split(otsl)[::2]) > longest_cell:
            continue
        html = otsl_to_html(otsl)
        pairs = qa_from_table(html)
        if pairs:
            image = (examples / "images" / record["filename"]).resolve()
            tables.append(DemoTable(image, otsl, html, pairs))
    return tables


def _row(table: DemoTable, *, solution: bool) -> dict[str, Any]:
    row: dict[str, Any] = {
        "messages": [
            {"role": "user", "content": OTSL_PROMPT},
            {"role": "assistant", "content": "<table></table>"},
        ],
        "images": [str(table.image)],
        "qa_pairs": table.qa_pairs,
    }
    if solution:
        row["solution"] = table.html
    problems = row_problems(row)
    if problems:
        raise ValueError(f"{table.image.name}: {'; '.join(problems)}")
    return row


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    path.write_text(text, encoding="utf-8")


def prepare_dataset(examples: Path, out: Path, *, val_rows: int = 3) -> PreparedData:
    """Write ``train.jsonl`` and ``val.jsonl`` under ``out`` from ``examples/examples.jsonl``.

    Tables for which no question can be generated are left out; the last ``val_rows`` usable
    tables are held out as the validation set (with ``solution``), the rest are trained on.
    """
    tables = demo_tables(examples)
    if len(tables) <= val_rows:
        raise ValueError(f"{examples}: {len(tables)} usable tables, need more than {val_rows}")
    train, val = tables[:-val_rows], tables[-val_rows:]
    _write(out / "train.jsonl", [_row(t, solution=False) for t in train])
    _write(out / "val.jsonl", [_row(t, solution=True) for t in val])
    questions = sum(len(t.qa_pairs) for t in tables)
    return PreparedData(
        out / "train.jsonl", out / "val.jsonl", len(train), len(val), questions, train, val
    )
