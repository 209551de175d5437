"""Reading the Dockerfiles as Docker does: instructions, build-argument defaults, RUN lines."""

from __future__ import annotations

import re
from pathlib import Path


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def build_args(path: Path) -> dict[str, str]:
    """The build arguments' defaults, as a RUN sees them in its environment."""
    found = {}
    for word, arg in instructions(path):
        if word == "ARG":
            name, _, default = arg.partition("=")
            found[name] = default
    return found


def requirements_command(path: Path) -> str:
    """The shell command by which the image writes its requirements.txt."""
    (command,) = [a for w, a in instructions(path) if w == "RUN" and "requirements.py" in a]
    return command.split(" && ")[0]
