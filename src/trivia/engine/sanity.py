"""The sampling sanity report: does `trivia data sample`'s output look like sampling? (pure)

Two failures make selection meaningless without any error: a server that decodes greedily
(all K outputs of an image identical, every consistency 1.0) and outputs that are mostly
invalid (cut off at `max_tokens`, unparseable, empty). The report counts both, gives the
consistency histogram and the sampling parameters used, shows what the invalid-output rule does
(how many images the other rule would move across the selection floor), and warns when most
images are identical or most outputs invalid.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from trivia.engine.consistency import pair_mean
from trivia.engine.selection import histogram

#: Above this share of images (or outputs) the report warns.
WARN_SHARE = 0.5
HISTOGRAM_BINS = 10


def _reason_class(reason: str | None) -> str:
    if reason is None:
        return "valid"
    if reason in ("truncated", "incomplete"):
        return "truncated" if reason == "truncated" else "unparseable"
    if reason == "empty":
        return "empty"
    return "unparseable"


def sanity_report(records: Iterable[Mapping[str, Any]], *, floor: float = 0.4) -> dict[str, Any]:
    """The report over sample records (streamed); see the module docstring."""
    images = identical = outputs = 0
    invalid: Counter[str] = Counter()
    with_invalid = moved_up = moved_down = 0
    scores: list[float] = []
    sampling: dict[str, dict[str, Any]] = {}
    rules: Counter[str] = Counter()
    for record in records:
        images += 1
        texts = [str(o.get("text", "")) for o in record.get("outputs", [])]
        valid = [bool(o.get("valid")) for o in record.get("outputs", [])]
        outputs += len(texts)
        if len(texts) > 1 and len(set(texts)) == 1:
            identical += 1
        for o in record.get("outputs", []):
            if not o.get("valid"):
                invalid[_reason_class(o.get("reason"))] += 1
        score = float(record.get("consistency", 0.0))
        scores.append(score)
        params = record.get("sampling")
        if isinstance(params, Mapping):
            sampling.setdefault(json.dumps(params, sort_keys=True), dict(params))
        rule = str(record.get("invalid_rule", "zero"))
        rules[rule] += 1
        if not all(valid):
            with_invalid += 1
            matrix = record.get("teds")
            if isinstance(matrix, list) and len(matrix) == len(valid):
                other = pair_mean(matrix, valid, "exclude" if rule == "zero" else "zero")
                if score < floor <= other:
                    moved_up += 1
                elif other < floor <= score:
                    moved_down += 1
    report: dict[str, Any] = {
        "images": images,
        "outputs": outputs,
        "identical": identical,
        "identical_share": identical / images if images else 0.0,
        "invalid": {reason: invalid[reason] for reason in ("truncated", "unparseable", "empty")},
        "invalid_share": sum(invalid.values()) / outputs if outputs else 0.0,
        "images_with_invalid": with_invalid,
        "consistency_histogram": {
            "edges": [round(i / HISTOGRAM_BINS, 2) for i in range(HISTOGRAM_BINS + 1)],
            "counts": histogram(scores, bins=HISTOGRAM_BINS),
        },
        "sampling": list(sampling.values()),
        "invalid_rule": dict(rules),
        "rule_effect": {
            "floor": floor,
            "would_rise_above_floor": moved_up,
            "would_fall_below_floor": moved_down,
            "explained": (
                "images whose consistency would cross the selection floor under the other "
                "invalid-output rule (--invalid zero|exclude)"
            ),
        },
        "warnings": [],
    }
    if images and report["identical_share"] > WARN_SHARE:
        report["warnings"].append(
            f"{identical} of {images} images have all K outputs identical: the server is "
            "probably decoding greedily (check that top_k/top_p reach it; vLLM fills unset "
            "fields from the model's generation_config)"
        )
    if outputs and report["invalid_share"] > WARN_SHARE:
        worst = max(invalid, key=lambda reason: invalid[reason])
        report["warnings"].append(
            f"{sum(invalid.values())} of {outputs} outputs are invalid (mostly {worst}): "
            "raise --max-tokens if they are truncated, or check the prompt format"
        )
    return report
