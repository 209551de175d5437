"""Prometheus metrics of the answering calls (names start with `trivia_`).

One sample per HTTP attempt, so retries show: `status` is the HTTP status code, or `timeout`,
`connect_error` or `protocol_error` when no status came back.
"""

from __future__ import annotations

from prometheus_client import Counter

from trivia.llm.metrics import call_metrics

QA_METRICS = call_metrics(
    "trivia_qa",
    "Answering calls",
    (0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
QA_CALLS, QA_LATENCY = QA_METRICS.calls, QA_METRICS.latency  # trivia_qa_calls_total, …

LOOKUP_ANSWERS = Counter(
    "trivia_qa_lookup_answers",  # exported as trivia_qa_lookup_answers_total
    "Questions the lookup answerer server answered, by outcome (answered / not_answerable).",
    ["outcome"],
)
