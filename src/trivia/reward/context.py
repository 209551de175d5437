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

__all__ = ["WorkerContext", "configure", "current"]

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
            s = self.settings
            self._client = QAClient(
                s.qa_url_list,
                model=s.qa_model,
                api_key=s.qa_api_key.get_secret_value() if s.qa_api_key else None,
                max_concurrency_per_endpoint=s.qa_max_concurrency_per_endpoint,
                request_timeout_s=s.qa_request_timeout_s,
                max_retries=s.qa_max_retries,
                backoff_base_s=s.qa_backoff_base_s,
                eject_after_failures=s.qa_eject_after_failures,
                eject_for_s=s.qa_eject_for_s,
                max_tokens=s.qa_max_tokens,
                prime_prefix=s.qa_prime_prefix,
            )
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
