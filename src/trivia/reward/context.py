"""What a worker process keeps between jobs: one event loop, one QA client, one answer cache.

The worker runs every job in its own process (no fork per job), so the QA client's connection
pool, the model name it looked up and the event loop they live on are made once and reused.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any, TypeVar

from trivia.qa.client import QAClient
from trivia.settings import Settings, get_settings

T = TypeVar("T")


class WorkerContext:
    """The long-lived state of one worker process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._runner = asyncio.Runner()
        self._client: QAClient | None = None

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run `coroutine` to completion on this process's event loop."""
        return self._runner.run(coroutine)

    def qa_client(self) -> QAClient:
        """The process's QA client, made on first use (inside the running loop)."""
        if self._client is None:
            self._client = QAClient.from_settings(self.settings)
        return self._client

    def close(self) -> None:
        """Close the client's connections and the loop."""
        if self._client is not None:
            client, self._client = self._client, None
            with contextlib.suppress(RuntimeError):
                self.run(client.aclose())
        self._runner.close()


_context: WorkerContext | None = None


def configure(settings: Settings) -> WorkerContext:
    """Make `settings` this process's worker configuration (called once at worker start)."""
    global _context
    if _context is not None:
        _context.close()
    _context = WorkerContext(settings)
    return _context


def current() -> WorkerContext:
    """This process's context, made from the environment's settings if none was configured."""
    global _context
    if _context is None:
        _context = WorkerContext(get_settings())
    return _context
