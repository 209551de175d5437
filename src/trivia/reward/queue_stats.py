"""Queue depth, jobs in flight and live workers, read from RQ's keys with redis.asyncio."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from rq import Queue
from rq.worker_registration import WORKERS_BY_QUEUE_KEY


@dataclass(frozen=True)
class QueueStats:
    queued: int
    in_flight: int
    workers: int


async def queue_stats(redis: Redis, queue: Queue) -> QueueStats:
    """Jobs waiting (`rq:queue:*`), running (`rq:wip:*`), and workers whose key is alive."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.llen(queue.key)
        pipe.zcard(queue.started_job_registry.key)
        pipe.smembers(WORKERS_BY_QUEUE_KEY % queue.name)
        queued, in_flight, members = await pipe.execute()
    workers = 0
    if members:
        async with redis.pipeline(transaction=False) as pipe:
            for member in members:
                pipe.exists(member)
            workers = sum(await pipe.execute())
    return QueueStats(queued=int(queued), in_flight=int(in_flight), workers=workers)
