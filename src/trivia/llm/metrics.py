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


def call_metrics(prefix: str, what: str, buckets: tuple[float, ...]) -> CallMetrics:
    """`{prefix}_calls_total` (labels endpoint, status) and `{prefix}_latency_seconds`."""
    return CallMetrics(
        Counter(
            f"{prefix}_calls",
            f"{what} (HTTP attempts) by endpoint and status.",
            ["endpoint", "status"],
        ),
        Histogram(
            f"{prefix}_latency_seconds",
            f"Time of one of the {what.lower()} (HTTP attempt), by endpoint.",
            ["endpoint"],
            buckets=buckets,
        ),
    )


LLM_METRICS = call_metrics(
    "trivia_llm",
    "Chat calls to LLM and VLM endpoints",
    (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0),
)
