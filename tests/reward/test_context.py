"""A worker's context: one event loop and one QA client for all its jobs."""

from __future__ import annotations

import asyncio

import pytest

from trivia.reward import context
from trivia.settings import Settings


@pytest.fixture(autouse=True)
def _no_context(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(context, "_context", None)


async def _loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


def _closed(ctx: context.WorkerContext) -> bool:
    probe = _loop()
    try:
        ctx.run(probe)
    except RuntimeError:
        return True
    finally:
        probe.close()
    return False


def test_jobs_share_one_loop_and_one_client_until_closed():
    ctx = context.configure(Settings(qa_urls=["http://127.0.0.1:9/v1"]))
    try:
        assert context.current() is ctx
        assert ctx.run(_loop()) is ctx.run(_loop())
        assert ctx.qa_client() is ctx.qa_client()
        assert not _closed(ctx)
    finally:
        ctx.close()
    assert _closed(ctx)


def test_configuring_again_closes_the_previous_context():
    first = context.configure(Settings())
    first.run(_loop())
    second = context.configure(Settings(qa_max_tokens=7))
    try:
        assert context.current() is second and second.settings.qa_max_tokens == 7
        assert _closed(first) and not _closed(second)
    finally:
        second.close()


def test_without_configuration_the_environment_decides(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(context, "get_settings", lambda: Settings(qa_max_tokens=11))
    ctx = context.current()
    try:
        assert ctx.settings.qa_max_tokens == 11 and context.current() is ctx
    finally:
        ctx.close()
