"""The QA image's vLLM command against the pinned vLLM's own argument definitions.

vLLM's image cannot be pulled here and `vllm serve --help` needs vLLM's CUDA build of torch,
so the flags are read from the source in the pinned `vllm` wheel (its argparse calls and the
frontend's dataclass fields, which vLLM turns into `--kebab-case` flags): a flag that the
pinned release does not define fails here rather than on a GPU machine 20 minutes into `up`.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import zipfile
from functools import cache
from pathlib import Path

import pytest

from .compose_files import COMPOSE, HOST_NETWORK, config
from .dockerfiles import build_args, instructions
from .tools import REPO, unavailable

pytestmark = pytest.mark.slow

QA_DOCKERFILE = REPO / "docker/qa/Dockerfile"
CACHE = Path(os.environ.get("TRIVIA_CACHE_DIR", "/var/cache/trivia-deploy"))
# Where vLLM defines `vllm serve`'s arguments.
SOURCES = ("vllm/engine/arg_utils.py", "vllm/entrypoints/common/cli_args.py")
FRONTEND_CLASSES = {"BaseFrontendArgs", "FrontendArgs"}


def _vllm_version() -> str:
    base = build_args(QA_DOCKERFILE)["BASE_IMAGE"]
    return re.fullmatch(r"vllm/vllm-openai:v([\d.]+)", base).group(1)


def _wheel(version: str) -> Path:
    folder = CACHE / f"vllm-{version}"
    found = sorted(folder.glob(f"vllm-{version}-*.whl"))
    if found:
        return found[0]
    folder.mkdir(parents=True, exist_ok=True)
    download = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
         "--platform", "manylinux_2_28_x86_64", "--python-version", "3.12",
         "--implementation", "cp", "--abi", "abi3", "--abi", "none",
         "--dest", str(folder), f"vllm=={version}"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    found = sorted(folder.glob(f"vllm-{version}-*.whl"))
    if download.returncode or not found:
        unavailable(f"cannot download the vllm {version} wheel: {download.stderr[-500:]}")
    return found[0]


@cache
def vllm_serve_flags(version: str) -> frozenset[str]:
    """Every `--flag` that `vllm serve` of `version` defines, read from its source."""
    flags: set[str] = set()
    with zipfile.ZipFile(_wheel(version)) as wheel:
        for source in SOURCES:
            tree = ast.parse(wheel.read(source).decode("utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument":
                    for arg in node.args:
                        if isinstance(arg, ast.Constant) and str(arg.value).startswith("--"):
                            flags.add(arg.value)
                if isinstance(node, ast.ClassDef) and node.name in FRONTEND_CLASSES:
                    for item in node.body:
                        if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                            flags.add("--" + item.target.id.replace("_", "-"))
    return frozenset(flags)


def _flags(argv: list[str]) -> list[str]:
    return [a.split("=", 1)[0] for a in argv if a.startswith("--")]


def test_the_flag_reader_finds_what_vllm_serve_is_known_to_take():
    flags = vllm_serve_flags(_vllm_version())
    assert {"--host", "--port", "--model", "--max-model-len", "--tensor-parallel-size"} <= flags
    assert "--no-such-flag" not in flags


def test_every_flag_the_qa_image_passes_exists_in_the_pinned_vllm():
    flags = vllm_serve_flags(_vllm_version())
    (cmd,) = [a for w, a in instructions(QA_DOCKERFILE) if w == "CMD"]
    commands = {"Dockerfile CMD": ast.literal_eval(cmd)}
    for files in ([COMPOSE], [COMPOSE, HOST_NETWORK]):
        service = config(files, ["gpu"])["services"]["qa"]
        commands[" + ".join(f.name for f in files)] = service["command"]
    for where, argv in commands.items():
        unknown = sorted(set(_flags(argv)) - flags)
        assert not unknown, f"{where}: vllm {_vllm_version()} has no {unknown}"


def test_the_chat_template_the_command_names_is_the_one_the_image_copies():
    (copy,) = [a for w, a in instructions(QA_DOCKERFILE) if w == "COPY" and ".jinja" in a]
    source, target = copy.split()
    command = config([COMPOSE], ["gpu"])["services"]["qa"]["command"]
    assert command[command.index("--chat-template") + 1] == target
    assert (REPO / source).is_file()
