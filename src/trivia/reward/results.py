"""Await a request's job results without blocking the event loop.

Workers push each table's result onto the request's list; the gateway pops them with BLPOP
(redis.asyncio, a bounded timeout per call) until every job has answered or the deadline passes.
A Redis outage (a restart) is ridden out with backoff until the deadline: what workers pushed
before it is kept by the AOF, and re-run jobs push again (results are read once per job).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Collection
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

__all__ = ["await_results"]

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
    backoff = 0.05
    while len(results) < len(wanted):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            popped = await redis.blpop([key], timeout=round(max(0.01, min(remaining, _POLL_S)), 3))
            if popped is None:
                continue
            batch = [popped[1]]
            more = await redis.lpop(key, _DRAIN)
            if more:
                batch.extend(more)
        except (RedisError, OSError):
            await asyncio.sleep(min(backoff, max(remaining, 0)))
            backoff = min(backoff * 2, 1.0)
            continue
        backoff = 0.05
        for raw in batch:
            result = json.loads(raw)
            index = result.get("job")
            if index in wanted:
                results.setdefault(index, result)
    return results
