"""Fixtures for the trainer tests: a live local reward stack and its token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from trivia.ports import free_port_block
from trivia.reward.stack import Stack, StackConfig
from trivia.settings import get_settings

TOKEN = "trainer-test-token"


@pytest.fixture(scope="session")
def live_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The real reward service (valkey, lookup answerer, a worker, the gateway) with a token."""
    config = StackConfig(
        port=free_port_block(),
        qa_lookup=True,
        workers=1,
        data_dir=tmp_path_factory.mktemp("stack"),
        env={"TRIVIA_API_TOKEN": TOKEN},
    )
    with Stack(config, say=lambda line: None) as stack:
        yield stack


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The stack's token, as the reward functions read it (TRIVIA_API_TOKEN via settings)."""
    monkeypatch.setenv("TRIVIA_API_TOKEN", TOKEN)
    get_settings.cache_clear()
    yield TOKEN
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def examples() -> Path:
    return Path(__file__).resolve().parents[2] / "examples" / "pubtabnet"
