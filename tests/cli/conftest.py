"""Shared fixtures for the command-line tests."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def pubtabnet() -> Path:
    """The PubTabNet samples shipped with the repository."""
    return REPO / "examples" / "pubtabnet"
