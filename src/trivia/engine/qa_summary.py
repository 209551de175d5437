"""The summary of a `trivia data qa` dataset: counts, drops by reason, per-image details.

Built one store record at a time (`SummaryBuilder.add`, fed by `write_dataset`), so a dataset of
50,000 images is summarised without holding its records.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from trivia.engine.qa_candidate import DROP_REASONS
from trivia.engine.qa_pipeline import QASettings
from trivia.engine.runner import RunSummary


@dataclass
class SummaryBuilder:
    """Accumulates the dataset's records into the JSON summary."""

    images: int = 0
    candidates: int = 0
    kept: int = 0
    drops: Counter[str] = field(default_factory=Counter)
    per_image: list[dict[str, Any]] = field(default_factory=list)

    def add(self, record: Mapping[str, Any]) -> None:
        self.images += 1
        self.candidates += record["candidates"]
        self.kept += len(record["qa_pairs"])
        self.drops.update(record.get("drops", {}))
        self.per_image.append(
            {
                "image": record["image"],
                "key": record["key"],
                "candidates": record["candidates"],
                "verified": record["verified"],
                "kept": len(record["qa_pairs"]),
                "rounds": record["rounds"],
                "drops": record["drops"],
                "table": record["table"],
                "coverage": record["coverage"],
            }
        )

    def summary(
        self,
        run: RunSummary,
        settings: QASettings,
        models: Mapping[str, Any],
        *,
        paths: Mapping[str, Path],
        rows: int,
    ) -> dict[str, Any]:
        """The JSON summary: this run's outcome and the whole dataset's counts and drops."""
        return {
            **{name: str(path) for name, path in paths.items()},
            "models": dict(models),
            "settings": asdict(settings),
            "run": {
                "done": run.done,
                "skipped": run.skipped,
                "failed": len(run.failed),
                "unreadable": len(run.unreadable),
                "aborted": run.aborted,
            },
            "images": self.images,
            "rows": rows,
            "candidates": self.candidates,
            "kept": self.kept,
            "drops": {reason: self.drops[reason] for reason in DROP_REASONS if self.drops[reason]},
            "drop_reasons": DROP_REASONS,
            "per_image": self.per_image,
            "failed": [{"image": f.name, "error": f.error} for f in run.failed],
            "unreadable": [{"image": f.name, "error": f.error} for f in run.unreadable],
        }
