"""The files around `trivia data qa`: sample records in, training rows out.

In: the JSONL of `trivia data sample` / `trivia data select`, one record per image with its
``image`` path, ``image_key``, the ``format`` it was recognised in and the K ``outputs`` (each
``{"text", "valid", …}``, or a plain string with validity in a ``valid`` list).
Out: training rows in ms-swift's format, as the demo writes them: the recognition prompt of the
same format with ``<image>``, a placeholder assistant turn, the image path and ``qa_pairs``.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

from trivia.dataset import row_problems
from trivia.dataset.jsonl import json_lines
from trivia.engine.prompts import recognition_prompt
from trivia.engine.store import ResultStore
from trivia.tables import TableFormat

#: The assistant turn of a training row: a placeholder, as in the demo's rows.
PLACEHOLDER_ANSWER = "<table></table>"


def iter_selected(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a `samples.jsonl` / `selected.jsonl`, one at a time, ``image`` made absolute.

    A relative image path counts from the file's folder. Blank lines are skipped; a line that
    is not a JSON object with an ``image`` raises ValueError naming it.
    """
    path = Path(path)
    for number, record in json_lines(path):
        if not isinstance(record, dict) or not isinstance(record.get("image"), str):
            raise ValueError(f"{path}:{number}: not a sample record with an image")
        image = Path(record["image"])
        record["image"] = str(image if image.is_absolute() else (path.parent / image).resolve())
        yield record


def read_selected(path: Path) -> list[dict[str, Any]]:
    """Every record of `iter_selected` in a list (small files; the command streams)."""
    return list(iter_selected(path))


def duplicate_images(path: Path) -> list[str]:
    """One message per image that appears on two lines of a sample file, naming both lines.

    Images are named by ``image_key`` (their content hash) where the record has one, else by
    path. One pass, keeping only a key and a line number per image.
    """
    first: dict[str, int] = {}
    problems = []
    with Path(path).open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # reported by the reader
            if not isinstance(record, dict):
                continue
            name = record.get("image_key") or record.get("image")
            if not isinstance(name, str):
                continue
            if name in first:
                problems.append(
                    f"{path}:{number}: the same image as line {first[name]} "
                    f"({record.get('image')}); keep one record per image (`trivia data select`)"
                )
            else:
                first[name] = number
    return problems


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
    store: ResultStore,
    keys: Iterable[str],
    out: Path,
    *,
    rejected: Path | None = None,
    on_record: Callable[[Mapping[str, Any]], None] | None = None,
) -> int:
    """Write the training rows of the store records named by `keys` to `out`, replacing it at
    once, and every rejected question of those records to `rejected` (JSONL, one per line with
    its image and reason). Streams the store: memory holds the keys, not the records.

    Records without a kept question make no row. `on_record` sees each record used (for the
    summary). Returns the rows written.
    """
    wanted = set(keys)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    audit = rejected.with_name(rejected.name + ".partial") if rejected is not None else None
    rows = 0
    used: set[str] = set()
    with partial.open("w", encoding="utf-8") as file, _maybe_open(audit) as audit_file:
        for record in store.records():
            key = record.get("key")
            if key not in wanted or key in used:
                continue
            used.add(key)
            if on_record is not None:
                on_record(record)
            if audit_file is not None:
                for entry in record.get("rejected", ()):
                    line = {"image": record["image"], "image_key": record.get("image_key")}
                    audit_file.write(json.dumps(line | entry, ensure_ascii=False) + "\n")
            if not record["qa_pairs"]:
                continue
            row = training_row(record)
            problems = row_problems(row)
            if problems:
                raise ValueError(f"{row['images'][0]}: {'; '.join(problems)}")
            file.write(json.dumps(row, ensure_ascii=False) + "\n")
            rows += 1
        file.flush()
        os.fsync(file.fileno())
    partial.replace(out)
    if audit is not None and rejected is not None:
        audit.replace(rejected)
    return rows


@contextlib.contextmanager
def _maybe_open(path: Path | None) -> Iterator[TextIO | None]:
    if path is None:
        yield None
        return
    with path.open("w", encoding="utf-8") as handle:
        yield handle
