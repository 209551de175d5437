"""Record scored requests for the inspector off the response path, never more than a few at once.

The reward response is sent first; building, compressing and storing the record runs after it
in a worker thread, and for a large request (a body read in the body pool) building and
compressing run in a child process too: JSON-encoding a 15 MB record holds the GIL. When
recordings pile up (Redis slow, huge requests), new ones are dropped and counted rather than
queued: the inspector is a view, and the gateway's memory stays bounded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from redis import Redis
from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool

from trivia.reward import metrics
from trivia.reward.inspector import store
from trivia.settings import Settings

if TYPE_CHECKING:
    from trivia.reward.body_pool import BodyPool

log = logging.getLogger(__name__)

_MAX_PENDING = 2


class Recorder:
    """Stores inspector records in Redis in the background, at most `_MAX_PENDING` at a time."""

    def __init__(self, redis: Redis, settings: Settings, pool: BodyPool | None = None) -> None:
        self._redis = redis
        self._settings = settings
        self._pool = pool
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def enabled(self) -> bool:
        return self._settings.inspect_keep > 0

    def submit(self, build: Callable[[], dict[str, Any]], *, large: bool = False) -> None:
        """Build and store one record, unless recording is off or busy.

        `build` runs in a thread, or with `large` in a child process of the pool (it and what it
        holds are then pickled: a module-level function with its arguments).
        """
        if not self.enabled:
            return
        if len(self._tasks) >= _MAX_PENDING:
            metrics.INSPECT_RECORDS.labels("dropped").inc()
            return
        task = asyncio.get_running_loop().create_task(self._record(build, large))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for the recordings in progress (at shutdown, and in tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _record(self, build: Callable[[], dict[str, Any]], large: bool) -> None:
        started = time.perf_counter()
        s = self._settings
        try:
            if large and self._pool is not None:
                encoded = await self._pool.run(build_and_encode, build, s.inspect_max_record_bytes)
            else:
                encoded = await run_in_threadpool(
                    build_and_encode, build, s.inspect_max_record_bytes
                )
            trimmed = await run_in_threadpool(
                store.put, self._redis, encoded, keep=s.inspect_keep, ttl_s=s.inspect_ttl_s
            )
        except (RedisError, OSError) as exc:
            metrics.INSPECT_RECORDS.labels("error").inc()
            log.warning("inspector: request not recorded: %s: %s", type(exc).__name__, exc)
            return
        except Exception:
            metrics.INSPECT_RECORDS.labels("error").inc()
            log.exception("inspector: request not recorded")
            return
        metrics.INSPECT_RECORDS.labels("trimmed" if trimmed else "stored").inc()
        metrics.INSPECT_RECORD_DURATION.observe(time.perf_counter() - started)


def build_and_encode(build: Callable[[], dict[str, Any]], max_record_bytes: int) -> store.Encoded:
    """Build a record and compress it for storing (the CPU part of recording)."""
    return store.encode(build(), max_record_bytes)
