"""A wheelhouse for offline image builds: the reward image's requirements, for another Python.

The local base image's Python (Debian's 3.11.2) is not this interpreter, and some requirements
differ by the exact Python version (redis needs async-timeout before 3.11.3): pip's
`--python-version` selects wheels but does not evaluate such markers, so the requirements of
the downloaded wheels are evaluated for the target version here and the missing ones fetched.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename

# Wheels a Debian bookworm (glibc 2.36) x86-64 interpreter accepts.
_PLATFORMS = [f"manylinux_2_{minor}_x86_64" for minor in range(36, 16, -1)] + [
    "manylinux2014_x86_64"
]


def reward_requirements(pyproject: Path) -> list[str]:
    """What the reward image installs: core and `reward` pins, plus the build backend."""
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    return (
        list(data["project"]["dependencies"])
        + list(data["project"]["optional-dependencies"]["reward"])
        + list(data["build-system"]["requires"])
    )


def _download(requirements: list[str], dest: Path, python_version: str) -> None:
    major, minor = python_version.split(".")[:2]
    platforms = [arg for p in _PLATFORMS for arg in ("--platform", p)]
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
         "--only-binary=:all:", "--python-version", python_version, "--implementation", "cp",
         "--abi", f"cp{major}{minor}", *platforms, "--dest", str(dest), *requirements],
        check=True,
        timeout=600,
    )  # fmt: skip


def _missing(dest: Path, environment: dict[str, str]) -> list[str]:
    present = {canonicalize_name(parse_wheel_filename(w.name)[0]) for w in dest.glob("*.whl")}
    present |= {canonicalize_name(parse_sdist_filename(s.name)[0]) for s in dest.glob("*.tar.gz")}
    missing: dict[str, str] = {}
    for wheel in dest.glob("*.whl"):
        with zipfile.ZipFile(wheel) as archive:
            name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
            metadata = Parser().parsestr(archive.read(name).decode("utf-8"))
        for line in metadata.get_all("Requires-Dist") or []:
            requirement = Requirement(line)
            wanted = requirement.marker is None or requirement.marker.evaluate(
                {**environment, "extra": ""}
            )
            key = canonicalize_name(requirement.name)
            if wanted and key not in present:
                missing[key] = f"{key}{requirement.specifier}"
    return sorted(missing.values())


def build_wheelhouse(requirements: list[str], dest: Path, python_full_version: str) -> Path:
    """Download `requirements` and their dependencies as wheels for `python_full_version`."""
    dest.mkdir(parents=True, exist_ok=True)
    _download(requirements, dest, python_full_version)
    return _complete(dest, python_full_version)


def _complete(dest: Path, python_full_version: str) -> Path:
    """Download what the wheels in `dest` require for `python_full_version` and lack, until
    nothing is missing (a few rounds: new wheels bring requirements of their own)."""
    environment = dict(default_environment())
    environment["python_full_version"] = python_full_version
    environment["python_version"] = ".".join(python_full_version.split(".")[:2])
    for _ in range(5):
        missing = _missing(dest, environment)
        if not missing:
            return dest
        _download(missing, dest, python_full_version)
    raise RuntimeError(f"wheelhouse still misses {missing}")


def build_host_wheelhouse(
    requirements: list[str], dest: Path, python_full_version: str, *, sources: list[str] = ()
) -> Path:
    """`requirements` as this machine's pip resolves them, for an image of the same platform.

    For the trainer image, whose requirements include source-only packages (DeepSpeed): pip
    cannot download those for another Python, so this interpreter (the same minor version and
    platform as the image's) downloads everything, sources as sources, and requirements whose
    markers differ for the image's exact Python are added as above.
    """
    dest.mkdir(parents=True, exist_ok=True)
    source_only = [a for name in sources for a in ("--no-binary", name)]
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
         "--prefer-binary", *source_only, "--dest", str(dest), *requirements],
        check=True,
        timeout=1800,
    )  # fmt: skip
    return _complete(dest, python_full_version)
