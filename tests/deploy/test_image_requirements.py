"""docker/requirements.py: an image's pins are pyproject's, overridden by name."""

from __future__ import annotations

import re
import sys
import tomllib

from .tools import REPO, run

SCRIPT = REPO / "docker/requirements.py"
PYPROJECT = REPO / "pyproject.toml"


def _requirements(*args: str) -> tuple[int, list[str], str]:
    result = run([sys.executable, str(SCRIPT), str(PYPROJECT), *args])
    return result.returncode, result.stdout.split(), result.stderr


def test_core_and_train_pins_with_the_images_overrides() -> None:
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    code, lines, _ = _requirements(
        "--extra", "train", "--pin", "torch==2.14.0", "--add", "vllm==0.33.0"
    )
    assert code == 0
    expected = [*project["dependencies"], *project["optional-dependencies"]["train"]]
    expected = ["torch==2.14.0" if r.startswith("torch==") else r for r in expected]
    assert lines == [*expected, "vllm==0.33.0"]


def test_a_pin_replaces_a_requirement_whatever_its_spelling() -> None:
    code, lines, _ = _requirements("--extra", "train", "--pin", "Qwen-VL-Utils==0.0.99")
    assert code == 0
    assert "Qwen-VL-Utils==0.0.99" in lines
    assert not [line for line in lines if line.startswith("qwen_vl_utils")]


def test_a_pin_of_something_not_required_is_refused() -> None:
    code, lines, stderr = _requirements("--extra", "train", "--pin", "trochvision==1.0")
    assert code == 2 and not lines
    assert "does not require trochvision" in stderr


def test_adding_what_is_already_required_is_refused() -> None:
    code, _, stderr = _requirements("--add", "numpy==1.0")
    assert code == 2 and "already required" in stderr


def test_an_unknown_extra_is_refused() -> None:
    code, _, stderr = _requirements("--extra", "gpu")
    assert code == 2 and "no extra named 'gpu'" in stderr


def test_the_trainer_dockerfile_overrides_only_what_vllm_dictates() -> None:
    text = (REPO / "docker/trainer/Dockerfile").read_text(encoding="utf-8")
    pins = sorted(set(re.findall(r'--pin "([\w-]+)==', text)))
    assert pins == ["numba", "numpy", "torch", "torchvision"]
    assert '--add "vllm==${VLLM_VERSION}"' in text
