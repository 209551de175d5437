"""Put a request's table jobs on the RQ queue, riding out a short Redis outage.

Every job is enqueued with `Retry`, so a job whose worker died is re-queued by the sweep rather
than failed, and with a TTL, so jobs of a request past its deadline are dropped unrun.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import stamina
from redis.exceptions import RedisError
from rq import Queue, Retry

from trivia.reward.planner import TableJob

# By name, so the gateway never imports the worker side (QA client, TEDS).
JOB_FUNCTION = "trivia.reward.jobs.score_table"
_CHUNK = 32


def job_payload(
    request_id: str, index: int, job: TableJob, *, notify: str, ttl_s: int, deadline: float
) -> dict[str, Any]:
    """The JSON payload of the job that scores `job` (index `index` of request `request_id`)."""
    return {
        "request": request_id,
        "job": index,
        "notify": notify,
        "ttl": ttl_s,
        "deadline": deadline,
        "table_hash": job.table_hash,
        "table": job.table,
        "questions": job.questions,
        "golds": [[q, answer] for q, answer in job.golds],
        "solutions": job.solutions,
    }


class QueueUnavailable(RuntimeError):
    """Redis could not be reached to enqueue within the allowed time."""


def enqueue_jobs(
    queue: Queue,
    request_id: str,
    payloads: Sequence[dict[str, Any]],
    *,
    job_timeout_s: int,
    ttl_s: int,
    retries: int,
    failure_ttl_s: int,
    give_up_at: float,
) -> None:
    """Enqueue one job per payload (ids `<request>-<index>`), a pipeline per chunk.

    Chunks let workers start on the first tables while the rest are still being enqueued.
    Retries on Redis errors until `give_up_at` (`time.monotonic()`), then raises
    QueueUnavailable. Enqueueing twice is harmless: jobs are idempotent and results read once.
    """
    for start in range(0, len(payloads), _CHUNK):
        datas = [
            Queue.prepare_data(
                JOB_FUNCTION,
                args=(payload,),
                job_id=f"{request_id}-{payload['job']}",
                timeout=job_timeout_s,
                ttl=ttl_s,
                result_ttl=0,
                failure_ttl=failure_ttl_s,
                retry=Retry(max=retries),
                description=f"reward table {payload['job']} of request {request_id}",
            )
            for payload in payloads[start : start + _CHUNK]
        ]
        _enqueue_chunk(queue, datas, give_up_at)


def _enqueue_chunk(queue: Queue, datas: list[Any], give_up_at: float) -> None:
    """One pipelined enqueue, retried with backoff (50 ms doubling to 1 s) until `give_up_at`."""
    try:
        for attempt in stamina.retry_context(
            on=(RedisError, OSError),
            attempts=None,
            timeout=max(give_up_at - time.monotonic(), 0.001),
            wait_initial=0.05,
            wait_max=1.0,
            wait_jitter=0.05,
        ):
            with attempt, queue.connection.pipeline() as pipe:
                queue.enqueue_many(datas, pipeline=pipe)
                pipe.execute()
    except (RedisError, OSError) as exc:
        raise QueueUnavailable(f"queue unavailable: {type(exc).__name__}: {exc}") from exc
