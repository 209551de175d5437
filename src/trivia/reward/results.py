"""Await a request's job results without blocking the event loop.

Workers push each table's result onto the request's list; the gateway pops them with BLPOP
(redis.asyncio, a bounded timeout per call) until every job has answered or the deadline passes.
A Redis outage (a restart) is ridden out with backoff until the deadline: what workers pushed
before it is kept by the AOF, and re-run jobs push again (results are read once per job).
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection
from typing import Any

import stamina
from redis.asyncio import Redis
from redis.exceptions import RedisError

_POLL_S = 1.0
_DRAIN = 1000


async def await_results(
    redis: Redis, key: str, expected: Collection[int], deadline: float
) -> dict[int, dict[str, Any]]:
    """Results of the jobs in `expected`, by job index; those missing at `deadline` are absent.

    `deadline` is a `time.monotonic()` instant.
    """
    results: dict[int, dict[str, Any]] = {}
    wanted = set(expected)
    while len(results) < len(wanted):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            batch = await _pop(redis, key, remaining)
        except (RedisError, OSError):
            break  # Redis stayed away until the deadline
        for raw in batch:
            result = json.loads(raw)
            index = result.get("job")
            if index in wanted:
                results.setdefault(index, result)
    return results


async def _pop(redis: Redis, key: str, remaining: float) -> list[bytes]:
    """The results pushed so far (waiting up to a poll), Redis errors retried with backoff
    (50 ms doubling to 1 s) for at most `remaining` seconds."""
    wait = round(max(0.01, min(remaining, _POLL_S)), 3)
    async for attempt in stamina.retry_context(
        on=(RedisError, OSError),
        attempts=None,
        timeout=remaining,
        wait_initial=0.05,
        wait_max=1.0,
        wait_jitter=0.05,
    ):
        with attempt:
            popped = await redis.blpop([key], timeout=wait)
            if popped is None:
                return []
            batch = [popped[1]]
            more = await redis.lpop(key, _DRAIN)
            if more:
                batch.extend(more)
            return batch
    return []
