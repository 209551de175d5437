"""The image builds' disk check: refused up front with the numbers, never a disk filled."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from .conftest import require_free_disk


def _engine(root: Path) -> httpx.Client:
    """An Engine API whose /info names `root` as the daemon's data directory."""
    answer = httpx.MockTransport(
        lambda request: httpx.Response(200, json={"DockerRootDir": str(root)})
    )
    return httpx.Client(transport=answer, base_url="http://docker")


def test_a_build_that_would_not_fit_is_refused_with_what_it_needs_and_what_is_free(tmp_path):
    free = shutil.disk_usage(tmp_path).free
    with (
        _engine(tmp_path) as engine,
        pytest.raises((pytest.skip.Exception, pytest.fail.Exception)) as refused,
    ):
        require_free_disk(engine, free + (64 << 30), "building the trainer image")
    message = str(refused.value)
    assert "building the trainer image needs about" in message
    assert str(tmp_path) in message and "GiB are free" in message


def test_a_build_that_fits_goes_ahead(tmp_path):
    with _engine(tmp_path) as engine:
        require_free_disk(engine, 1 << 20, "building the trainer image")
