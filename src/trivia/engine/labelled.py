"""Labelled tables to evaluate on, read from the formats people have them in.

- PubTabNet JSONL: one record per line with `filename` and `html.structure.tokens` /
  `html.cells` (`examples/pubtabnet/examples.jsonl`); the ground truth is `pubtabnet_html`.
- Dataset JSONL (the training-row format): `images` and an HTML `solution`, or else the
  assistant turn as ground truth (HTML, or OTSL converted); rows without a table are skipped.
- PubTabNet's evaluation JSON: one object `{name: {"html": …}}` (`sample_gt.json`); it names no
  images, so it is scored against `--predictions` only.

Relative image paths are read against the dataset file's folder, then an `images/` folder beside
it, then the working directory (ms-swift's rule), or against `images_dir` when given.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trivia.dataset import pubtabnet_html
from trivia.tables import html_to_table, to_html


@dataclass(frozen=True, slots=True)
class LabelledTable:
    """One table to score: a unique name, its image (if any), and the ground-truth HTML."""

    name: str
    image: Path | None
    html: str


def _resolve(entry: str, base: Path, images_dir: Path | None) -> Path:
    path = Path(entry)
    if path.is_absolute():
        return path
    candidates = [images_dir / path] if images_dir else [base / path, base / "images" / path, path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    return candidates[0].resolve()


def _assistant_truth(row: dict[str, Any]) -> str | None:
    messages = row.get("messages") or []
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "assistant":
            content = message.get("content")
            return content if isinstance(content, str) else None
    return None


def _has_cells(html: str) -> bool:
    table = html_to_table(html)
    return table is not None and bool(table.cells)


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError(f"{path}:{number}: not a JSON object")
                yield number, record


def load_labelled(
    path: Path, *, images_dir: Path | None = None, split: str | None = None
) -> list[LabelledTable]:
    """Every labelled table in `path` (format detected per record); names are made unique.

    `split`: only PubTabNet records whose ``split`` is this (the official JSONL mixes train,
    val and test). Raises ValueError for a record that is in neither format, and for a split
    that no record has.
    """
    path = Path(path)
    base = path.resolve().parent
    tables: list[LabelledTable] = []
    evaluation_map = _json_map(path.read_text(encoding="utf-8"))
    if evaluation_map is not None:
        if split is not None:
            raise ValueError(f"{path}: an evaluation map has no splits; drop --split")
        for name, html in evaluation_map.items():
            tables.append(LabelledTable(name, None, html))
        return _unique(tables)
    splits: set[str] = set()
    for number, record in _rows(path):
        if "filename" in record and isinstance(record.get("html"), dict):
            if split is not None:
                splits.add(str(record.get("split")))
                if record.get("split") != split:
                    continue
            html = pubtabnet_html(record["html"])
            image = _resolve(str(record["filename"]), base, images_dir)
            tables.append(LabelledTable(Path(record["filename"]).name, image, html))
            continue
        images = record.get("images")
        if isinstance(images, list) and images and isinstance(images[0], str):
            truth = record.get("solution") or _assistant_truth(record)
            if not isinstance(truth, str) or not truth.strip():
                continue
            html = to_html(truth)
            if not _has_cells(html):
                continue  # a placeholder turn: this row has no ground truth
            if "<table" in truth.lower():
                html = truth  # keep the markup as written (row groups, inline tags count)
            image = _resolve(images[0], base, images_dir)
            tables.append(LabelledTable(Path(images[0]).name, image, html))
            continue
        raise ValueError(f"{path}:{number}: neither a PubTabNet record nor a dataset row")
    if split is not None and split not in splits:
        found = ", ".join(sorted(splits)) or "none"
        raise ValueError(f"{path}: no PubTabNet record of split {split!r} (splits: {found})")
    return _unique(tables)


def _json_map(text: str) -> dict[str, str] | None:
    """`{name: html}` when `text` is one JSON object of `{name: {"html": …}}`, else None."""
    if not text.lstrip().startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None  # JSON lines
    if not isinstance(value, dict) or not value:
        return None
    found: dict[str, str] = {}
    for name, entry in value.items():
        html = entry.get("html") if isinstance(entry, dict) else None
        if not isinstance(html, str):
            return None  # a single JSON-lines record, not a map
        found[str(name)] = html
    return found


def _unique(tables: list[LabelledTable]) -> list[LabelledTable]:
    seen: dict[str, int] = {}
    out = []
    for table in tables:
        count = seen.get(table.name, 0)
        seen[table.name] = count + 1
        name = table.name if count == 0 else f"{table.name}#{count + 1}"
        out.append(LabelledTable(name, table.image, table.html))
    return out
