"""The RQ job: score one unique table (all its questions, its TEDS solutions), publish the result.

A job is idempotent: it may run twice (a killed worker's job is re-run while, rarely, its first
run still finishes), and both runs publish the same result, which the gateway reads once. The
payload, built by `enqueue.job_payload`, is plain JSON (the queue uses RQ's JSON serializer,
never pickle):

    {"request": id, "job": index, "notify": key, "ttl": s, "deadline": unix time,
     "table_hash": h, "table": html, "questions": [q…],
     "golds": [[question index, answer or [aliases…]]…],
     "solutions": [html…]}

The result pushed to `notify` is JSON:

    {"job": index, "error": null | "what failed",
     "answers": [[prediction | null, error | null] per question],
     "f1": [f1 | null per gold],
     "teds": [[score | null, normalised score | null, error | null] per solution],
     "asked": QA calls made, "cached": answers served by the cache,
     "replies": [the QA model's raw reply | null per question],
     "fresh": [whether the reply was asked for now, not read from the cache, per question]}
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

from trivia.llm.errors import QAError
from trivia.metrics import TableTooLarge, teds
from trivia.metrics.qa_f1 import extract_answer, qa_f1
from trivia.qa.client import QAClient
from trivia.reward import metrics
from trivia.reward.cache import AnswerCache
from trivia.tables import normalize_html

log = logging.getLogger(__name__)


def describe(exc: QAError) -> str:
    """A QA failure in words, for the item's `error` (no secrets: QAError holds none)."""
    return f"qa {exc.kind}: {exc}"


async def score(payload: dict[str, Any], *, client: QAClient, cache: AnswerCache) -> dict[str, Any]:
    """Answer the table's questions (cache first), score F1 and TEDS; the result dict."""
    index = payload["job"]
    remaining = payload["deadline"] - time.time()
    if remaining <= 0:
        return {"job": index, "error": "deadline passed before the table was scored"}
    deadline = time.monotonic() + remaining
    table: str = payload["table"]
    table_hash: str = payload["table_hash"]
    questions: list[str] = payload["questions"]
    replies: list[str | None] = [None] * len(questions)
    errors: list[str | None] = [None] * len(questions)
    fresh_flags = [False] * len(questions)
    asked = cached = 0
    if questions:
        try:
            model = await client.model_name()
        except QAError as exc:
            errors = [describe(exc)] * len(questions)
        else:
            for i, reply in enumerate(cache.get_many(model, table_hash, questions)):
                replies[i] = reply
            misses = [i for i, reply in enumerate(replies) if reply is None]
            for i in misses:
                fresh_flags[i] = True
            cached = len(questions) - len(misses)
            asked = len(misses)
            metrics.ANSWER_CACHE.labels("hit").inc(cached)
            metrics.ANSWER_CACHE.labels("miss").inc(asked)
            outcomes = await client.answer_many(
                table, [questions[i] for i in misses], deadline=deadline
            )
            fresh: dict[str, str] = {}
            for i, outcome in zip(misses, outcomes, strict=True):
                if isinstance(outcome, QAError):
                    errors[i] = describe(outcome)
                else:
                    replies[i] = fresh[questions[i]] = outcome
            cache.put_many(model, table_hash, fresh)
    answers = [
        [extract_answer(reply) if reply is not None else None, error]
        for reply, error in zip(replies, errors, strict=True)
    ]
    f1 = [
        qa_f1(replies[q], answer) if replies[q] is not None else None
        for q, answer in payload["golds"]
    ]
    return {
        "job": index,
        "error": None,
        "answers": answers,
        "f1": f1,
        "teds": [_teds(table, solution) for solution in payload["solutions"]],
        "asked": asked,
        "cached": cached,
        "replies": replies,
        "fresh": fresh_flags,
    }


def _teds(table: str, solution: str) -> list[float | str | None]:
    """[raw TEDS, TEDS with both sides through `normalize_html`, error]."""
    started = time.perf_counter()
    try:
        raw = teds(table, solution)
        return [raw, teds(normalize_html(table), normalize_html(solution)), None]
    except TableTooLarge as exc:
        return [None, None, f"table too large for TEDS: {exc}"]
    except (ValueError, RecursionError) as exc:
        return [None, None, f"TEDS failed: {type(exc).__name__}: {exc}"]
    finally:
        metrics.TEDS_DURATION.observe(time.perf_counter() - started)


def publish(connection: Redis, payload: dict[str, Any], result: dict[str, Any]) -> None:
    """Push `result` to the request's result list (atomically with its expiry)."""
    with connection.pipeline(transaction=True) as pipe:
        pipe.rpush(payload["notify"], json.dumps(result, separators=(",", ":")))
        pipe.expire(payload["notify"], payload["ttl"])
        pipe.execute()


def score_table(payload: dict[str, Any]) -> None:
    """RQ entry point: score one table with this worker's context and publish the result.

    Redis errors propagate, so RQ re-queues the job (`Retry`); any other error is published as
    the job's `error`, so the request answers at once instead of waiting for its deadline.
    """
    from rq import get_current_job

    from trivia.reward import context

    job = get_current_job()
    if job is None:
        raise RuntimeError("score_table runs inside an RQ worker")
    connection: Redis = job.connection
    ctx = context.current()
    cache = AnswerCache(connection, ctx.settings.answer_cache_ttl_s)
    started = time.perf_counter()
    try:
        result = ctx.run(score(payload, client=ctx.qa_client(), cache=cache))
        outcome = "expired" if result.get("error") else "ok"
    except RedisError:
        metrics.JOBS.labels("redis_error").inc()
        raise
    except Exception as exc:
        log.exception("job %s of request %s failed", payload.get("job"), payload.get("request"))
        result = {"job": payload["job"], "error": f"worker error: {type(exc).__name__}: {exc}"}
        outcome = "error"
    publish(connection, payload, result)
    metrics.JOBS.labels(outcome).inc()
    metrics.JOB_DURATION.observe(time.perf_counter() - started)
