"""The summary of a `trivia data qa` dataset: counts, drops by reason, per-image details.

Built one store record at a time (`SummaryBuilder.add`, fed by `write_dataset`) and written by
streaming (`SummaryBuilder.write`): the per-image entries wait in a temporary file, not in
memory, so a dataset of 50,000 images is summarised in the same memory as one of 50.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from trivia.engine.qa_candidate import DROP_REASONS
from trivia.engine.qa_pipeline import QASettings
from trivia.engine.runner import RunSummary


def _spool() -> IO[str]:
    return tempfile.TemporaryFile("w+", encoding="utf-8")


@dataclass
class SummaryBuilder:
    """Accumulates the dataset's records into the JSON summary.

    `first` keeps the first `keep_first` per-image entries for the printed report; every entry
    goes to the spool file that `write` copies into the summary.
    """

    keep_first: int = 30
    images: int = 0
    candidates: int = 0
    kept: int = 0
    drops: Counter[str] = field(default_factory=Counter)
    first: list[dict[str, Any]] = field(default_factory=list)
    _spool: IO[str] = field(default_factory=_spool, repr=False)

    def add(self, record: Mapping[str, Any]) -> None:
        self.images += 1
        self.candidates += record["candidates"]
        self.kept += len(record["qa_pairs"])
        self.drops.update(record.get("drops", {}))
        entry = {
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
        if len(self.first) < self.keep_first:
            self.first.append(entry)
        self._spool.write(json.dumps(entry, ensure_ascii=False) + "\n")

    def summary(
        self,
        run: RunSummary,
        settings: QASettings,
        models: Mapping[str, Any],
        *,
        paths: Mapping[str, Path],
        rows: int,
    ) -> dict[str, Any]:
        """The JSON summary but its ``per_image`` list (which `write` adds): this run's outcome
        and the whole dataset's counts and drops."""
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
            "failed": [{"image": f.name, "error": f.error} for f in run.failed],
            "unreadable": [{"image": f.name, "error": f.error} for f in run.unreadable],
        }

    def write(self, path: Path, summary: Mapping[str, Any]) -> None:
        """Write `summary` with every image's entry as its last field, ``per_image``, to `path`
        (one entry at a time), and drop the spool."""
        head = json.dumps({**summary, "per_image": []}, indent=2, ensure_ascii=False)
        head = head.removesuffix("[]\n}")
        self._spool.seek(0)
        with Path(path).open("w", encoding="utf-8") as out:
            out.write(head + "[")
            for number, line in enumerate(self._spool):
                out.write(("," if number else "") + "\n    " + line.rstrip("\n"))
            out.write("\n  ]\n}\n" if self.images else "]\n}\n")
        self._spool.close()
