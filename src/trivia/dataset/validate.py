"""Checking a dataset file: reading the JSONL and looking for the images it names on disk."""

from __future__ import annotations

import hashlib
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


class _SeenImages:
    """Images by content: the same path, or files of one size whose SHA-256 agree (a file is
    hashed only when another of its size was seen, so a large dataset is not read twice)."""

    def __init__(self) -> None:
        self._by_path: dict[str, int] = {}
        self._by_size: dict[int, list[tuple[str, int]]] = {}
        self._digests: dict[str, str] = {}

    def _digest(self, path: str) -> str | None:
        if path not in self._digests:
            try:
                self._digests[path] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            except OSError:
                return None
        return self._digests[path]

    def add(self, path: str, line: int) -> int | None:
        """The line that used the same image before, else None (and `path` is remembered)."""
        if path in self._by_path:
            return self._by_path[path]
        try:
            size = Path(path).stat().st_size
        except OSError:
            size = -1
        for other, other_line in self._by_size.get(size, []) if size >= 0 else []:
            digest = self._digest(path)
            if digest is not None and digest == self._digest(other):
                return other_line
        self._by_path[path] = line
        self._by_size.setdefault(size, []).append((path, line))
        return None


def validate_jsonl(path: Path, *, display_name: str | None = None) -> ValidationReport:
    """Check every row of a JSONL dataset file; blank lines are skipped.

    Problems name the file as ``display_name`` (default: ``path`` as given) and the 1-based line.
    """
    name = display_name if display_name is not None else str(path)
    base_dir = path.parent
    report = ValidationReport()
    seen = _SeenImages()
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            reasons = list(_line_problems(raw, base_dir))
            if not reasons:
                image = _first_image(raw, base_dir)
                earlier = seen.add(image, number) if image is not None else None
                if earlier is not None:
                    reasons.append(f"the same image as line {earlier} ({image})")
            if reasons:
                report.bad_rows += 1
                report.problems.extend(Problem(name, number, reason) for reason in reasons)
            else:
                report.good_rows += 1
    return report
