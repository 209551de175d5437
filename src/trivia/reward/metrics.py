"""Every Prometheus metric of the reward service (names start with `trivia_`).

The gateway and each worker are separate processes, each serving its own `/metrics`
(workers on their own port): a worker's counters are its own, summed by Prometheus. The QA
client's per-call metrics (`trivia_qa_calls_total`, `trivia_qa_latency_seconds`, by endpoint
and status) live with the client in `trivia.qa.metrics` and show on the workers' port.

Every series with a known set of label values is exposed at 0 from the start, so a dashboard
or an alert (`increase(trivia_jobs_total{outcome="error"}[5m])`) sees it before its first event.
"""

from __future__ import annotations

from typing import TypeVar

from prometheus_client import Counter, Gauge, Histogram

M = TypeVar("M", Counter, Histogram)

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_SCORE_BUCKETS = tuple(round(0.1 * i, 1) for i in range(11))


def with_series(metric: M, *values: str) -> M:
    """`metric` with a series for each value of its one label, so each shows before it counts."""
    for value in values:
        metric.labels(value)
    return metric


ITEM_OUTCOMES = ("valid", "invalid", "failed", "no_signal")
JOB_OUTCOMES = ("ok", "expired", "error", "redis_error")

# --- gateway ---------------------------------------------------------------------------------
REQUESTS = Counter("trivia_requests", "Reward requests answered, by HTTP status.", ["status"])
ITEMS = with_series(
    Counter(
        "trivia_items",
        "Scored items by outcome: valid (scored), invalid (policy's fault, 0.0), "
        "failed (infrastructure, null), no_signal (no questions).",
        ["outcome"],
    ),
    *ITEM_OUTCOMES,
)
REWARD = Histogram("trivia_reward", "QA-F1 reward of valid, scored items.", buckets=_SCORE_BUCKETS)
REQUEST_DURATION = Histogram(
    "trivia_request_duration_seconds",
    "End-to-end time of a reward request.",
    buckets=_LATENCY_BUCKETS,
)
STAGE_DURATION = with_series(
    Histogram(
        "trivia_stage_duration_seconds",
        "Time per gateway stage: plan (validity, dedupe), enqueue, wait, assemble.",
        ["stage"],
        buckets=_LATENCY_BUCKETS,
    ),
    "plan",
    "enqueue",
    "wait",
    "assemble",
)
DEDUPE_SAVED_CALLS = Counter(
    "trivia_dedupe_saved_calls", "QA calls saved by answering each (table, question) once."
)
BODY_READS = with_series(
    Counter(
        "trivia_body_reads",
        "Request bodies parsed, checked and planned, by where: process (large bodies, in the "
        "body pool) or thread.",
        ["where"],
    ),
    "process",
    "thread",
)
QUEUE_DEPTH = Gauge("trivia_queue_depth", "Jobs waiting in the queue.")
JOBS_IN_FLIGHT = Gauge("trivia_jobs_in_flight", "Jobs being run by a worker.")
WORKERS_ALIVE = Gauge("trivia_workers_alive", "Workers registered on the queue.")
INSPECT_RECORDS = with_series(
    Counter(
        "trivia_inspect_records",
        "Requests recorded for the inspector: stored, trimmed (detail kept for the first groups "
        "only), dropped (recording busy), error (Redis).",
        ["outcome"],
    ),
    "stored",
    "trimmed",
    "dropped",
    "error",
)
INSPECT_RECORD_DURATION = Histogram(
    "trivia_inspect_record_seconds",
    "Time to build, compress and store one request's inspector record (off the response path).",
    buckets=_LATENCY_BUCKETS,
)

# --- workers ---------------------------------------------------------------------------------
JOBS = with_series(
    Counter(
        "trivia_jobs",
        "Table jobs run by this worker, by outcome: ok, expired (the request's deadline passed), "
        "error (published as the job's error), redis_error (re-queued).",
        ["outcome"],
    ),
    *JOB_OUTCOMES,
)
JOB_DURATION = Histogram(
    "trivia_job_duration_seconds", "Time to score one table job.", buckets=_LATENCY_BUCKETS
)
ANSWER_CACHE = with_series(
    Counter("trivia_answer_cache", "Answer-cache lookups by result.", ["result"]), "hit", "miss"
)
TEDS_DURATION = Histogram(
    "trivia_teds_duration_seconds", "Time of one TEDS computation.", buckets=_LATENCY_BUCKETS
)
