"""The gateway's queue gauges, read from RQ's own keys in a real valkey."""

from __future__ import annotations

import asyncio
import time
import uuid

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer

from trivia.reward.queue_stats import QueueStats, queue_stats


def _stats(redis: Redis, queue: Queue) -> QueueStats:
    async def read() -> QueueStats:
        client = AsyncRedis(port=redis.connection_pool.connection_kwargs["port"])
        try:
            return await queue_stats(client, queue)
        finally:
            await client.aclose()

    return asyncio.run(read())


def test_waiting_running_and_only_live_workers_are_counted(redis: Redis) -> None:
    queue = Queue(f"stats-{uuid.uuid4().hex}", connection=redis, serializer=JSONSerializer)
    assert _stats(redis, queue) == QueueStats(queued=0, in_flight=0, workers=0)

    jobs = [queue.enqueue("trivia.reward.jobs.score_table", {"n": n}) for n in range(3)]
    # A worker running the first: RQ keeps `{job}:{execution}` in the started registry.
    redis.zadd(queue.started_job_registry.key, {f"{jobs[0].id}:execution": time.time() + 60})
    live, dead = (
        SimpleWorker([queue], connection=redis, serializer=JSONSerializer) for _ in range(2)
    )
    live.register_birth()
    dead.register_birth()
    redis.delete(dead.key)  # its key expired: it died without saying so
    try:
        assert _stats(redis, queue) == QueueStats(queued=3, in_flight=1, workers=1)
    finally:
        live.register_death()
        dead.register_death()
        queue.delete(delete_jobs=True)
