"""The images' Dockerfiles: hadolint-clean, pinned bases, what they copy is in the context."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest

from .tools import REPO, run, venv_tool

DOCKERFILES = sorted((REPO / "docker").glob("*/Dockerfile"))
IMAGES = {path.parent.name for path in DOCKERFILES}


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def test_the_three_images_exist() -> None:
    assert {"qa", "reward", "trainer"} == IMAGES


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.parent.name)
def test_hadolint_finds_nothing(path: Path) -> None:
    result = run([venv_tool("hadolint"), "--failure-threshold", "info", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.parent.name)
def test_base_images_are_build_arguments_with_pinned_defaults(path: Path) -> None:
    instructions = _instructions(path)
    defaults = dict(arg.split("=", 1) for word, arg in instructions if word == "ARG" and "=" in arg)
    stages = [arg.split()[0] for word, arg in instructions if word == "FROM"]
    assert stages
    for image in stages:
        variable = re.fullmatch(r"\$\{(\w+)\}", image)
        assert variable, f"FROM {image}: base images are build arguments (offline builds)"
        default = defaults[variable.group(1)]
        repository, _, tag = default.rpartition(":")
        assert repository and re.search(r"\d+\.\d+", tag) and "latest" not in tag, default


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.parent.name)
def test_every_image_has_an_exec_form_healthcheck(path: Path) -> None:
    checks = [arg for word, arg in _instructions(path) if word == "HEALTHCHECK"]
    assert len(checks) == 1
    assert re.search(r'CMD \["', checks[0])


@pytest.mark.parametrize("name", ["reward", "trainer"])
def test_cpu_and_trainer_images_run_as_a_non_root_user(name: str) -> None:
    users = [
        arg for word, arg in _instructions(REPO / f"docker/{name}/Dockerfile") if word == "USER"
    ]
    assert users and users[-1].split(":")[0] not in {"root", "0"}


def test_the_reward_image_installs_the_reward_extra_only() -> None:
    runs = " ".join(a for w, a in _instructions(REPO / "docker/reward/Dockerfile") if w == "RUN")
    assert re.findall(r"\.\[([\w,]+)\]", runs) == ["reward"]


def _dockerignore_allows(path: str, patterns: list[str]) -> bool:
    allowed = True
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if any(
            fnmatch.fnmatch(prefix, pattern)
            for prefix in (path, *(str(p) for p in Path(path).parents if str(p) != "."))
        ):
            allowed = negate
    return allowed


def test_what_the_dockerfiles_copy_is_in_the_build_context() -> None:
    lines = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert patterns[0] == "*", "the context is an allow-list"
    for path in DOCKERFILES:
        for word, arg in _instructions(path):
            if word == "COPY" and not arg.startswith("--from"):
                *sources, _ = arg.split()
                for source in sources:
                    assert (REPO / source).exists(), f"{path}: COPY {source}"
                    assert _dockerignore_allows(source, patterns), f"{source} is ignored"
    for private in (".venv", ".git", "runs", "tests", ".venv-train"):
        assert not _dockerignore_allows(private, patterns), private
