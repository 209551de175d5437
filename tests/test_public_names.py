"""Each package's public names, pinned: a change to them is a change to this file.

`__all__` lives in package `__init__`s only; a module's names are reached through its package
or imported by module path. Packages that re-export nothing (the services, the CLI, the trainer
plugin, the data engine) are used by module path and have no `__all__`.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import trivia

PUBLIC = {
    "trivia.tables": [
        "Cell", "GridTooLarge", "MAX_GRID_SLOTS", "Structure", "Table", "TableFormat",
        "detect_format", "html_to_otsl", "html_to_table", "is_complete", "normalize_html",
        "otsl_to_html", "otsl_to_table", "table_to_html", "table_to_otsl", "to_html",
    ],
    "trivia.metrics": ["TableTooLarge", "extract_answer", "pairwise_teds", "qa_f1", "teds"],
    "trivia.dataset": [
        "IMAGE_TAG", "Message", "Problem", "QAPair", "TrainingRow", "ValidationReport",
        "missing_images", "pubtabnet_html", "row_problems", "validate_jsonl",
    ],
    "trivia.qa": [
        "EndpointStats", "NOT_ANSWERABLE", "PROMPT_VERSION", "QAClient", "QAError",
        "answer_messages", "answer_question", "build_messages", "parse_messages",
    ],
    "trivia.llm": ["ChatClient", "ChatReply", "EndpointStats", "LLMError", "QAError"],
}  # fmt: skip
SRC = Path(trivia.__file__).parent


def _packages() -> list[str]:
    found = ["trivia"]
    for info in pkgutil.walk_packages(trivia.__path__, "trivia."):
        if info.ispkg:
            found.append(info.name)
    return found


@pytest.mark.parametrize("package", _packages())
def test_each_package_exports_exactly_its_pinned_names(package: str) -> None:
    module = importlib.import_module(package)
    exported = sorted(getattr(module, "__all__", []))
    assert exported == PUBLIC.get(package, [])
    for name in exported:
        assert getattr(module, name) is not None  # lazy exports resolve too


def test_only_package_inits_declare_all() -> None:
    declaring = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if path.name != "__init__.py" and re.search(r"^__all__\b", path.read_text(), re.M)
    ]
    assert declaring == []
