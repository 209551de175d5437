"""`trivia data review`: pages a researcher reads to judge what `trivia data qa` kept and why.

For each image of a QA run's progress records: the image, the recognised table (the consensus
recognition the answers were located in) with each kept question's answering cell highlighted,
the kept question-answer pairs, and every rejected question with its reason and what the
verifier answered with and without the image. An index page lists the images with their counts.
Pages are jinja2 templates, autoescaped; tables are rebuilt from the parsed recognition, so
model output is shown, never run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jinja2

from trivia.tables import html_to_table, to_html

_IMAGE_PIXELS = 400 * 28 * 28

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("trivia.engine", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def progress_records(folder: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """(progress file, record) for every record of every `*.progress.jsonl` in `folder`."""
    for path in sorted(Path(folder).glob("*.progress.jsonl")):
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                if line.strip():
                    yield path, json.loads(line)


def _table_rows(
    recognition: str | None, highlights: Mapping[tuple[int, int], list[int]]
) -> list[list[dict[str, Any]]] | None:
    """The recognised table's rows for the template; a cell lists the kept questions (1-based)
    whose answer it holds."""
    if not recognition:
        return None
    table = html_to_table(to_html(recognition))
    if table is None or not table.cells:
        return None
    rows: list[list[dict[str, Any]]] = [[] for _ in range(table.n_rows)]
    for cell in sorted(table.cells, key=lambda c: (c.row, c.col)):
        if 0 <= cell.row < table.n_rows:
            rows[cell.row].append(
                {
                    "text": cell.text,
                    "rowspan": cell.rowspan,
                    "colspan": cell.colspan,
                    "questions": highlights.get((cell.row, cell.col), []),
                }
            )
    return rows


def _image_url(image: str) -> str | None:
    from trivia.engine.images import image_data_url

    try:
        return image_data_url(Path(image), max_pixels=_IMAGE_PIXELS, min_pixels=28 * 28)
    except (OSError, ValueError):
        return None


def _page(record: Mapping[str, Any], number: int) -> dict[str, Any]:
    highlights: dict[tuple[int, int], list[int]] = {}
    kept = []
    for index, (pair, location) in enumerate(
        zip(
            record["qa_pairs"],
            record.get("locations") or [None] * len(record["qa_pairs"]),
            strict=True,
        ),
        start=1,
    ):
        if location is not None:
            highlights.setdefault((location[0], location[1]), []).append(index)
        kept.append({"number": index, **pair, "located": location is not None})
    return {
        "number": number,
        "image": record["image"],
        "name": Path(record["image"]).name,
        "image_url": _image_url(record["image"]),
        "table": _table_rows(record.get("recognition"), highlights),
        "kept": kept,
        "rejected": [
            {
                "reason": entry.get("reason", ""),
                "question": entry.get("question", ""),
                "answer": entry.get("answer", ""),
                "round": entry.get("round"),
                "without": entry.get("without_image"),
                "without_f1": entry.get("without_image_f1"),
                "with": entry.get("with_image"),
                "with_f1": entry.get("with_image_f1"),
                "raw": entry.get("item", entry.get("reply")),
            }
            for entry in record.get("rejected", [])
        ],
        "drops": record.get("drops", {}),
        "coverage": record.get("coverage", {}),
        "shape": record.get("table", {}),
    }


def write_review(folder: Path, out: Path, *, limit: int | None = None) -> tuple[Path, int]:
    """Write the index page `out` and one page per image in `out`'s `NAME_pages/` folder;
    returns (index path, images shown). `limit`: at most this many images."""
    out = Path(out)
    pages_dir = out.with_name(out.name.removesuffix(".html") + "_pages")
    pages_dir.mkdir(parents=True, exist_ok=True)
    image_template = _env.get_template("review_image.html")
    entries = []
    for number, (_, record) in enumerate(progress_records(folder), start=1):
        if limit is not None and number > limit:
            break
        page = _page(record, number)
        target = pages_dir / f"{number:05d}.html"
        target.write_text(
            image_template.render(page=page, index=f"../{out.name}"), encoding="utf-8"
        )
        entries.append(
            {
                "href": f"{pages_dir.name}/{target.name}",
                "name": page["name"],
                "kept": len(page["kept"]),
                "rejected": len(page["rejected"]),
                "drops": page["drops"],
            }
        )
    out.write_text(
        _env.get_template("review_index.html").render(folder=str(folder), entries=entries),
        encoding="utf-8",
    )
    return out, len(entries)
