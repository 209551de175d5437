"""Per-step trainer metrics: the names written to ``logging.jsonl`` and the Prometheus endpoint.

The trainer appends the step's values to ms-swift's metric store under the names below, so they
are averaged into ``logging.jsonl`` beside ``reward`` and ``rewards/<name>/mean``. Rank 0 also
serves them as ``trivia_train_*`` gauges for Prometheus; ``TrainMetricsExporter.observe`` takes
the same dictionary ms-swift logs, so the two never disagree.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from trivia.trainer.filtering import FilterStats

VALID_RATE = "rejection_sampling/valid_rate"
REJECTION_RATE = "rejection_sampling/rejection_rate"
GROUPS_SKIPPED = "rejection_sampling/groups_skipped"
TRUNCATED = "rejection_sampling/truncated"
MALFORMED = "rejection_sampling/malformed"
# Valid share of everything generated, before keeping the first valid ones of an oversample.
GENERATED_VALID_RATE = "rejection_sampling/generated_valid_rate"
FAILED = "reward_failures/count"
FAILED_RATE = "reward_failures/rate"
# Rows with nothing to score (no questions): masked, never a failure, never a reason to stop.
NO_SIGNAL = "reward_no_signal/count"
NO_SIGNAL_RATE = "reward_no_signal/rate"
STEP_SECONDS = "trivia/step_seconds"
TOKENS_PER_SECOND = "trivia/tokens_per_second"
# Validation TEDS / TEDS-S, raw and with both sides through `normalize_html` (`_norm`).
TEDS = "teds"
TEDS_STRUCTURE = "teds_s"
TEDS_NORM = "teds_norm"
TEDS_STRUCTURE_NORM = "teds_s_norm"

_REWARD_KEY = re.compile(r"^(eval_)?rewards/(?P<name>[^/]+)/(?P<stat>mean|std)$")


def filter_metrics(stats: FilterStats, failed: int, no_signal: int = 0) -> dict[str, float]:
    """The step's filter, failure and no-signal metrics under their logged names."""
    n = stats.completions
    return {
        VALID_RATE: stats.valid_rate,
        REJECTION_RATE: stats.rejection_rate,
        GROUPS_SKIPPED: float(stats.groups_skipped),
        TRUNCATED: float(stats.truncated),
        MALFORMED: float(stats.malformed),
        FAILED: float(failed),
        FAILED_RATE: failed / n if n else 0.0,
        NO_SIGNAL: float(no_signal),
        NO_SIGNAL_RATE: no_signal / n if n else 0.0,
    }


class TrainMetricsExporter:
    """``trivia_train_*`` gauges fed from the logged dictionary of each step."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.step = Gauge("trivia_train_step", "Last optimiser step logged.", registry=r)
        self.reward = Gauge("trivia_train_reward", "Weighted reward, step mean.", registry=r)
        self.reward_mean = Gauge(
            "trivia_train_reward_mean", "Reward per function, step mean.", ["func"], registry=r
        )
        self.reward_std = Gauge(
            "trivia_train_reward_std", "Reward per function, step std.", ["func"], registry=r
        )
        self.valid_rate = Gauge(
            "trivia_train_valid_rate", "Share of completions the filter keeps.", registry=r
        )
        self.rejection_rate = Gauge(
            "trivia_train_rejection_rate", "Share of completions the filter drops.", registry=r
        )
        self.groups_skipped = Gauge(
            "trivia_train_groups_skipped", "Groups with fewer than two valid.", registry=r
        )
        self.failures = Counter(
            "trivia_train_reward_failures", "Completions whose reward failed.", registry=r
        )
        self.no_signal = Counter(
            "trivia_train_reward_no_signal",
            "Completions with nothing to score (no questions): masked, not failures.",
            registry=r,
        )
        self.step_seconds = Gauge("trivia_train_step_seconds", "Wall time of a step.", registry=r)
        self.tokens_per_second = Gauge(
            "trivia_train_tokens_per_second", "Completion tokens generated per second.", registry=r
        )
        self.teds = Gauge("trivia_train_eval_teds", "Validation TEDS.", registry=r)
        self.teds_structure = Gauge("trivia_train_eval_teds_s", "Validation TEDS-S.", registry=r)
        self.teds_norm = Gauge(
            "trivia_train_eval_teds_norm", "Validation TEDS, both sides normalised.", registry=r
        )
        self.teds_structure_norm = Gauge(
            "trivia_train_eval_teds_s_norm", "Validation TEDS-S, both sides normalised.", registry=r
        )

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        """Serve ``/metrics`` on ``host:port`` from a daemon thread."""
        start_http_server(port, addr=host, registry=self.registry)

    def observe(self, logs: Mapping[str, Any], step: int | None = None) -> None:
        """Update the gauges from one logged dictionary (training or evaluation)."""
        values = {k: float(v) for k, v in logs.items() if isinstance(v, int | float)}
        if step is not None:
            self.step.set(step)
        simple = {
            "reward": self.reward,
            VALID_RATE: self.valid_rate,
            REJECTION_RATE: self.rejection_rate,
            GROUPS_SKIPPED: self.groups_skipped,
            STEP_SECONDS: self.step_seconds,
            TOKENS_PER_SECOND: self.tokens_per_second,
            f"eval_{TEDS}": self.teds,
            f"eval_{TEDS_STRUCTURE}": self.teds_structure,
            f"eval_{TEDS_NORM}": self.teds_norm,
            f"eval_{TEDS_STRUCTURE_NORM}": self.teds_structure_norm,
        }
        for key, gauge in simple.items():
            if key in values:
                gauge.set(values[key])
        if values.get(FAILED, 0) > 0:
            self.failures.inc(values[FAILED])
        if values.get(NO_SIGNAL, 0) > 0:
            self.no_signal.inc(values[NO_SIGNAL])
        for key, value in values.items():
            match = _REWARD_KEY.match(key)
            if match and match.group(1) is None:
                target = self.reward_mean if match["stat"] == "mean" else self.reward_std
                target.labels(func=match["name"]).set(value)
