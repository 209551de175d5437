"""The files around `trivia data qa`: sample records in, training rows out.

In: the JSONL of `trivia data sample` / `trivia data select`, one record per image with its
``image`` path, ``image_key``, the ``format`` it was recognised in and the K ``outputs`` (each
``{"text", "valid", …}``, or a plain string with validity in a ``valid`` list).
Out: training rows in ms-swift's format, as the demo writes them: the recognition prompt of the
same format with ``<image>``, a placeholder assistant turn, the image path and ``qa_pairs``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from trivia.dataset import row_problems
from trivia.engine.prompts import recognition_prompt
from trivia.engine.store import ResultStore
from trivia.tables import TableFormat

__all__ = [
    "PLACEHOLDER_ANSWER",
    "read_selected",
    "recognitions",
    "table_format",
    "training_row",
    "write_dataset",
]

#: The assistant turn of a training row: a placeholder, as in the demo's rows.
PLACEHOLDER_ANSWER = "<table></table>"


def read_selected(path: Path) -> list[dict[str, Any]]:
    """The records of a `samples.jsonl` / `selected.jsonl`, with ``image`` paths made absolute.

    A relative image path counts from the file's folder. Blank lines are skipped; a line that
    is not a JSON object with an ``image`` raises ValueError naming it.
    """
    records = []
    with Path(path).open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: invalid JSON: {exc.msg}") from None
            if not isinstance(record, dict) or not isinstance(record.get("image"), str):
                raise ValueError(f"{path}:{number}: not a sample record with an image")
            image = Path(record["image"])
            record["image"] = str(image if image.is_absolute() else (path.parent / image).resolve())
            records.append(record)
    return records


def recognitions(record: Mapping[str, Any]) -> tuple[list[str], list[bool] | None]:
    """The K output texts of a sample record and their validity (None when not recorded)."""
    texts: list[str] = []
    valid: list[bool] = []
    for output in record.get("outputs") or []:
        if isinstance(output, Mapping):
            texts.append(str(output.get("text") or ""))
            valid.append(bool(output.get("valid", True)))
        else:
            texts.append(str(output))
    flags = record.get("valid")
    if isinstance(flags, list) and len(flags) == len(texts):
        valid = [bool(flag) for flag in flags]
    return texts, (valid if len(valid) == len(texts) else None)


def table_format(record: Mapping[str, Any]) -> TableFormat:
    """The format the record's recognitions were asked in (OTSL unless it says HTML)."""
    return "html" if record.get("format") == "html" else "otsl"


def training_row(result: Mapping[str, Any]) -> dict[str, Any]:
    """The training row (ms-swift format, as the demo's) of one image's store record."""
    return {
        "messages": [
            {"role": "user", "content": recognition_prompt(table_format(result))},
            {"role": "assistant", "content": PLACEHOLDER_ANSWER},
        ],
        "images": [result["image"]],
        "qa_pairs": [dict(pair) for pair in result["qa_pairs"]],
    }


def write_dataset(
    store: ResultStore, keys: Sequence[str], out: Path
) -> tuple[int, list[dict[str, Any]]]:
    """Write the training rows of the records named by `keys` to `out`, replacing it at once.

    Records without a kept question make no row. Returns (rows written, the records used, in
    `keys` order, one per key).
    """
    wanted = dict.fromkeys(keys)
    found: dict[str, dict[str, Any]] = {}
    for record in store.records():
        if record.get("key") in wanted:
            found.setdefault(record["key"], record)
    results = [found[key] for key in wanted if key in found]
    rows = [training_row(result) for result in results if result["qa_pairs"]]
    for row in rows:
        problems = row_problems(row)
        if problems:
            raise ValueError(f"{row['images'][0]}: {'; '.join(problems)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with partial.open("w", encoding="utf-8") as file:
        for row in rows:
            file.write(json.dumps(row, ensure_ascii=False) + "\n")
        file.flush()
        os.fsync(file.fileno())
    partial.replace(out)
    return len(rows), results
