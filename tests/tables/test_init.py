from __future__ import annotations

import ast
from pathlib import Path

import trivia.tables

PACKAGE = Path(trivia.tables.__file__).parent
IO_MODULES = {"os", "io", "pathlib", "shutil", "tempfile", "subprocess", "socket", "urllib",
              "http", "httpx", "requests", "sqlite3", "json"}  # fmt: skip


def test_public_api_is_pinned() -> None:
    assert sorted(trivia.tables.__all__) == [
        "Cell",
        "GridTooLarge",
        "MAX_GRID_SLOTS",
        "Structure",
        "Table",
        "TableFormat",
        "detect_format",
        "html_to_otsl",
        "html_to_table",
        "is_complete",
        "normalize_html",
        "otsl_to_html",
        "otsl_to_table",
        "table_to_html",
        "table_to_otsl",
        "to_html",
    ]
    for name in trivia.tables.__all__:
        assert getattr(trivia.tables, name) is not None


def test_the_package_does_no_io() -> None:
    for source in PACKAGE.glob("*.py"):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = {(node.module or "").split(".")[0]}
            else:
                roots = set()
            assert not roots & IO_MODULES, f"{source.name} imports {roots & IO_MODULES}"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id != "open", f"{source.name} opens a file"
