"""Print an image's requirements: the project's pins, with the image's overrides.

The images install their dependencies from this list before copying the source, so a code
change does not reinstall them. vLLM (colocated generation in the trainer image) pins torch to
the release it was built against, which can differ from the `train` extra's torch: the image
replaces such pins here (`--pin torch==2.14.0`) and adds vLLM (`--add vllm==0.33.0`), so
pyproject.toml stays the one list of everything else. A `--pin` that matches no requirement is
an error: a typo must not add a package silently.

    python3 docker/requirements.py pyproject.toml --extra train \
        --pin torch==2.14.0 --pin torchvision==0.29.0 --add vllm==0.33.0
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical(requirement: str) -> str:
    """The normalised project name of a requirement (PEP 503)."""
    match = _NAME.match(requirement)
    if match is None:
        raise ValueError(f"not a requirement: {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def requirements(
    pyproject: dict, extras: Iterable[str], pins: Sequence[str] = (), add: Sequence[str] = ()
) -> list[str]:
    """Core and `extras` requirements of `pyproject`, `pins` replacing same-named ones."""
    project = pyproject["project"]
    found = list(project.get("dependencies", []))
    for extra in extras:
        try:
            found += project["optional-dependencies"][extra]
        except KeyError as exc:
            raise ValueError(f"no extra named {extra!r}") from exc
    by_name = {canonical(r): r for r in found}
    for pin in pins:
        name = canonical(pin)
        if name not in by_name:
            raise ValueError(f"--pin {pin}: the project does not require {name}")
        by_name[name] = pin
    for extra_requirement in add:
        name = canonical(extra_requirement)
        if name in by_name:
            raise ValueError(f"--add {extra_requirement}: already required; use --pin")
        by_name[name] = extra_requirement
    return list(by_name.values())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pyproject", type=Path)
    parser.add_argument("--extra", action="append", default=[])
    parser.add_argument("--pin", action="append", default=[])
    parser.add_argument("--add", action="append", default=[])
    args = parser.parse_args(argv)
    data = tomllib.loads(args.pyproject.read_text(encoding="utf-8"))
    try:
        lines = requirements(data, args.extra, args.pin, args.add)
    except ValueError as exc:
        print(f"requirements.py: {exc}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
