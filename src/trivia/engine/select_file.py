"""`trivia data select` over a file of any size: one pass, an index, then a copy of the chosen.

The sample file can hold 50,000 records of tens of kilobytes each. One pass reads each line,
keeps only (key, consistency, byte offset) per image, the latest record of an image replacing
earlier ones (two `sample` runs in one file, or a changed K, give an image several records: it
must still be one row), runs the selection rule (`selection`) on that index, and copies the
chosen lines from their offsets in the file's order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trivia.engine.selection import Selection, SelectionRule


@dataclass(frozen=True, slots=True)
class FileSelection:
    """The selection, the consistency of every image considered, and what was superseded."""

    selection: Selection  # its records are the index entries chosen
    consistencies: list[float]  # one per image (the latest record of each)
    superseded: int  # earlier records of an image that a later one replaced


def _index(samples: Path) -> tuple[list[dict[str, Any]], int]:
    latest: dict[str, dict[str, Any]] = {}
    superseded = 0
    offset = 0
    with samples.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            start, offset = offset, offset + len(line)
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                consistency = float(record["consistency"])
            except (ValueError, KeyError, TypeError):
                raise ValueError(
                    f"{samples}:{number}: not a sample record (no consistency)"
                ) from None
            image = record.get("image_key") or record.get("image") or f"line {number}"
            if image in latest:
                superseded += 1
                del latest[image]  # re-inserted last: the index keeps the file's order
            latest[image] = {
                "key": str(record.get("key", "")),
                "consistency": consistency,
                "offset": start,
            }
    return list(latest.values()), superseded


def select_file(samples: Path, out: Path, rule: SelectionRule) -> FileSelection:
    """Select from `samples` into `out` (see the module docstring); ValueError for a bad line."""
    entries, superseded = _index(samples)
    selection = rule.apply(entries)
    chosen = sorted(entry["offset"] for entry in selection.records)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with samples.open("rb") as source, partial.open("wb") as target:
        for offset in chosen:
            source.seek(offset)
            line = source.readline()
            target.write(line if line.endswith(b"\n") else line + b"\n")
    partial.replace(out)
    return FileSelection(selection, [e["consistency"] for e in entries], superseded)
