"""Prometheus metrics of the answering calls (names start with `trivia_`).

One sample per HTTP attempt, so retries show: `status` is the HTTP status code, or `timeout`,
`connect_error` or `protocol_error` when no status came back.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

QA_CALLS = Counter(
    "trivia_qa_calls",  # exported as trivia_qa_calls_total
    "Answering calls (HTTP attempts) by endpoint and status.",
    ["endpoint", "status"],
)

QA_LATENCY = Histogram(
    "trivia_qa_latency_seconds",
    "Time of one answering call (HTTP attempt), by endpoint.",
    ["endpoint"],
    buckets=(0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)

LOOKUP_ANSWERS = Counter(
    "trivia_qa_lookup_answers",  # exported as trivia_qa_lookup_answers_total
    "Questions the lookup answerer server answered, by outcome (answered / not_answerable).",
    ["outcome"],
)
