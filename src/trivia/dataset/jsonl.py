"""Reading JSONL files line by line, naming the line that is not JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def json_lines(path: Path, error: type[ValueError] = ValueError) -> Iterator[tuple[int, Any]]:
    """Each non-blank line of `path` parsed, with its 1-based number; a line that is not JSON
    raises `error` as ``path:line: invalid JSON: …``."""
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise error(f"{path}:{number}: invalid JSON: {exc.msg}") from None
            yield number, value
