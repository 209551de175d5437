"""Prometheus metrics of chat calls, one sample per HTTP attempt (so retries show).

Each client family passes its own pair (the answering client keeps `trivia_qa_*`); the rest use
`trivia_llm_*`. `status` is the HTTP status code, or `timeout`, `connect_error` or
`protocol_error` when no status came back.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Counter, Histogram


@dataclass(frozen=True, slots=True)
class CallMetrics:
    """The counter (labels `endpoint`, `status`) and histogram (label `endpoint`) a client uses."""

    calls: Counter
    latency: Histogram


LLM_CALLS = Counter(
    "trivia_llm_calls",  # exported as trivia_llm_calls_total
    "Chat calls (HTTP attempts) to LLM and VLM endpoints, by endpoint and status.",
    ["endpoint", "status"],
)

LLM_LATENCY = Histogram(
    "trivia_llm_latency_seconds",
    "Time of one chat call (HTTP attempt) to an LLM or VLM endpoint, by endpoint.",
    ["endpoint"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0),
)

LLM_METRICS = CallMetrics(LLM_CALLS, LLM_LATENCY)
