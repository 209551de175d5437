"""Checking a dataset file: reading the JSONL and looking for the images it names on disk."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from trivia.dataset.row import row_problems


@dataclass(frozen=True, slots=True)
class Problem:
    """Why one line of a dataset file is unusable."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass(slots=True)
class ValidationReport:
    """The outcome of checking one file: how many rows are good and what is wrong with the rest."""

    good_rows: int = 0
    bad_rows: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.bad_rows == 0


def missing_images(images: Iterable[str], base_dir: Path) -> list[str]:
    """The image paths that name no file; relative paths count from ``base_dir``."""
    return [image for image in images if not (base_dir / image).is_file()]


def _line_problems(raw: bytes, base_dir: Path) -> Iterator[str]:
    try:
        data = json.loads(raw.decode("utf-8").rstrip("\r\n"))
    except UnicodeDecodeError:
        yield "not valid UTF-8"
        return
    except json.JSONDecodeError as error:
        yield f"invalid JSON: {error.msg} (column {error.colno})"
        return
    reasons = row_problems(data)
    yield from reasons
    if not reasons:
        for image in missing_images(data["images"], base_dir):
            yield f"image not found: {image}"


def _first_image(raw: bytes, base_dir: Path) -> str | None:
    """The row's image as a resolved path: one image is one training row."""
    try:
        images = json.loads(raw).get("images")
    except (ValueError, AttributeError):
        return None
    if not isinstance(images, list) or not images or not isinstance(images[0], str):
        return None
    image = Path(images[0])
    return str(image if image.is_absolute() else (base_dir / image).resolve())


def validate_jsonl(path: Path, *, display_name: str | None = None) -> ValidationReport:
    """Check every row of a JSONL dataset file; blank lines are skipped.

    Problems name the file as ``display_name`` (default: ``path`` as given) and the 1-based line.
    """
    name = display_name if display_name is not None else str(path)
    base_dir = path.parent
    report = ValidationReport()
    first_line: dict[str, int] = {}  # image → the line that first used it
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            reasons = list(_line_problems(raw, base_dir))
            if not reasons:
                image = _first_image(raw, base_dir)
                if image is not None and image in first_line:
                    reasons.append(f"the same image as line {first_line[image]} ({image})")
                elif image is not None:
                    first_line[image] = number
            if reasons:
                report.bad_rows += 1
                report.problems.extend(Problem(name, number, reason) for reason in reasons)
            else:
                report.good_rows += 1
    return report
