"""The `trivia_*` series the code exports, and a check of the PromQL that dashboards and alerts use.

Series names are derived the way Prometheus' client exposes them (a counter `x` as `x_total`
and `x_created`, a histogram as `x_bucket`, `x_sum`, `x_count`, `x_created`), with the label
names each metric declares.
"""

from __future__ import annotations

import re
from functools import cache

from prometheus_client.metrics import MetricWrapperBase

# Labels Prometheus adds to every scraped series (and `le`, which the bucket series carry).
TARGET_LABELS = frozenset({"job", "instance", "namespace", "pod", "service", "container"})

_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
}
_TRIVIA_NAME = re.compile(r"\btrivia_[A-Za-z0-9_]+")
_SELECTOR = re.compile(r"\b(trivia_[A-Za-z0-9_]+)\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


def _collectors() -> list[MetricWrapperBase]:
    import trivia.qa.metrics
    import trivia.reward.metrics
    from trivia.trainer.metrics import TrainMetricsExporter

    found = [
        value
        for module in (trivia.reward.metrics, trivia.qa.metrics)
        for value in vars(module).values()
        if isinstance(value, MetricWrapperBase)
    ]
    exporter = TrainMetricsExporter()
    found += [v for v in vars(exporter).values() if isinstance(v, MetricWrapperBase)]
    return found


@cache
def exported_series() -> dict[str, frozenset[str]]:
    """Every `trivia_*` series name the services expose, with its label names."""
    series: dict[str, frozenset[str]] = {}
    for collector in _collectors():
        labels = frozenset(collector._labelnames)
        for family in collector.collect():
            for suffix in _SUFFIXES[family.type]:
                extra = {"le"} if suffix == "_bucket" else set()
                series[family.name + suffix] = labels | extra
    return series


def unknown_names(expr: str) -> list[str]:
    """`trivia_*` names in `expr` that no service exports."""
    return sorted(set(_TRIVIA_NAME.findall(expr)) - set(exported_series()))


def unknown_labels(expr: str) -> list[str]:
    """Labels `expr` matches or groups by that none of its `trivia_*` series carries."""
    series = exported_series()
    used = [name for name in _TRIVIA_NAME.findall(expr) if name in series]
    if not used:
        return []
    known = set(TARGET_LABELS).union(*(series[name] for name in used))
    problems = []
    for name, matchers in _SELECTOR.findall(expr):
        if name in series:
            for label in _MATCHER.findall(matchers):
                if label not in series[name] | TARGET_LABELS:
                    problems.append(f"{name}{{{label}}}")
    for group in _GROUPING.findall(expr):
        for label in (part.strip() for part in group.split(",")):
            if label and label not in known:
                problems.append(f"by ({label})")
    return problems
