"""The images' Dockerfiles: hadolint-clean, pinned bases, what they copy is in the context."""

from __future__ import annotations

import fnmatch
import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from .dockerfiles import build_args, requirements_command
from .dockerfiles import instructions as read_instructions
from .tools import REPO, run, venv_tool

DOCKERFILES = sorted((REPO / "docker").glob("*/Dockerfile"))
IMAGES = {path.parent.name for path in DOCKERFILES}


def test_the_three_images_exist() -> None:
    assert {"qa", "reward", "trainer"} == IMAGES


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.parent.name)
def test_hadolint_finds_nothing(path: Path) -> None:
    result = run([venv_tool("hadolint"), "--failure-threshold", "info", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.parent.name)
def test_base_images_are_build_arguments_with_pinned_defaults(path: Path) -> None:
    instructions = read_instructions(path)
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
    checks = [arg for word, arg in read_instructions(path) if word == "HEALTHCHECK"]
    assert len(checks) == 1
    assert re.search(r'CMD \["', checks[0])


@pytest.mark.parametrize("name", ["reward", "trainer"])
def test_cpu_and_trainer_images_run_as_a_non_root_user(name: str) -> None:
    users = [
        arg for word, arg in read_instructions(REPO / f"docker/{name}/Dockerfile") if word == "USER"
    ]
    assert users and users[-1].split(":")[0] not in {"root", "0"}


def test_the_reward_image_installs_the_reward_extra_only() -> None:
    steps = read_instructions(REPO / "docker/reward/Dockerfile")
    runs = " ".join(a for w, a in steps if w == "RUN")
    assert re.findall(r"--extra (\w+)", runs) == ["reward"]
    assert not re.findall(r"\.\[([\w,]+)\]", runs)


@pytest.mark.parametrize(
    ("name", "overrides", "expected"),
    [
        ("reward", {}, set()),
        ("trainer", {}, {"torch==2.14.0", "vllm==0.33.0", "numpy==2.3.5"}),
        ("trainer", {"VLLM_VERSION": "", "TORCH_VERSION": "2.14.1"}, {"torch==2.14.1"}),
    ],
    ids=["reward", "trainer", "trainer-without-vllm"],
)
def test_the_requirements_step_runs_as_the_dockerfile_writes_it(
    tmp_path: Path, name: str, overrides: dict[str, str], expected: set[str]
) -> None:
    """The RUN line itself, in sh, with the build arguments' defaults, where WORKDIR would be."""
    path = REPO / f"docker/{name}/Dockerfile"
    (tmp_path / "docker").mkdir()
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    shutil.copy(REPO / "docker/requirements.py", tmp_path / "docker")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin/python3").symlink_to(sys.executable)  # a Python with tomllib, as the image's
    env = {
        "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin",
        **{k: v for k, v in build_args(path).items() if not k.startswith("PIP_")},
        **overrides,
    }
    result = run(["sh", "-c", requirements_command(path)], cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    lines = (tmp_path / "requirements.txt").read_text(encoding="utf-8").split()
    assert expected <= set(lines)
    names = [re.split(r"[=<>!~ ;\[]", line)[0].lower().replace("_", "-") for line in lines]
    assert len(names) == len(set(names)), "a package listed twice"
    wants_vllm = name == "trainer" and overrides.get("VLLM_VERSION") != ""
    assert ("vllm" in names) == wants_vllm


@pytest.mark.parametrize("name", ["reward", "trainer"])
def test_dependencies_are_installed_before_the_source_is_copied(name: str) -> None:
    """A code change must not reinstall the dependencies (Docker's layer cache)."""
    instructions = read_instructions(REPO / f"docker/{name}/Dockerfile")
    copy_src = next(
        i for i, (w, a) in enumerate(instructions) if w == "COPY" and a.startswith("src")
    )
    installs = [i for i, (w, a) in enumerate(instructions) if w == "RUN" and "pip install" in a]
    after = [instructions[i][1] for i in installs if i > copy_src]
    # Before the dependencies, only what they are computed from: a README edit reuses them too.
    first_install = min(installs)
    copied = [a.split()[:-1] for w, a in instructions[:first_install] if w == "COPY"]
    assert all(set(s) <= {"pyproject.toml", "docker/requirements.py"} for s in copied), copied
    assert any(i < copy_src for i in installs), "no dependency layer before COPY src"
    assert after and all("--no-deps" in a for a in after), after


def test_the_trainer_runtime_is_cuda_base_because_torch_brings_its_libraries() -> None:
    args = build_args(REPO / "docker/trainer/Dockerfile")
    assert re.fullmatch(r"nvidia/cuda:[\d.]+-base-ubuntu[\d.]+", args["CUDA_RUNTIME_IMAGE"])
    assert "cudnn" not in args["CUDA_DEVEL_IMAGE"]  # the torch wheels bring cuDNN and NCCL


def _launch_configs() -> list[Path]:
    return [*sorted((REPO / "configs").glob("*.yaml")), REPO / "k8s/base/trainer-launch.yaml"]


@pytest.mark.parametrize("path", _launch_configs(), ids=lambda p: p.name)
def test_a_launch_config_asks_only_for_attention_the_trainer_image_has(path: Path) -> None:
    """flash-attn is in the image only when FLASH_ATTN_VERSION is given at build time."""
    swift = yaml.safe_load(path.read_text(encoding="utf-8"))["swift"]
    attention = swift.get("attn_impl") or "sdpa"
    built_with_flash = bool(build_args(REPO / "docker/trainer/Dockerfile")["FLASH_ATTN_VERSION"])
    assert attention in {"sdpa", "eager"} or (attention.startswith("flash") and built_with_flash)


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
        for word, arg in read_instructions(path):
            if word == "COPY" and not arg.startswith("--from"):
                *sources, _ = arg.split()
                for source in sources:
                    assert (REPO / source).exists(), f"{path}: COPY {source}"
                    assert _dockerignore_allows(source, patterns), f"{source} is ignored"
    for private in (".venv", ".git", "runs", "tests", ".venv-train"):
        assert not _dockerignore_allows(private, patterns), private
