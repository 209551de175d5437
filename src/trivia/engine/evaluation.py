"""`trivia eval`: a model's tables against the ground truth, by TEDS and TEDS-S.

Predictions come from the model (`predict`: one recognition per table at temperature 0,
resumable like sampling) or from a `{name: html}` file. Scores (`score_predictions`):

- raw: PubTabNet's TEDS of the prediction (`to_html`: OTSL converted, HTML cut to its first
  table, which scores exactly as the whole document does) against the ground truth as given;
  this reproduces the official sample scores;
- normalised (`normalize`): both sides through `normalize_html` first, as OmniDocBench scores;
- TEDS-S of each: structure only.

A table whose prediction is missing or empty scores 0 (PubTabNet's rule). A pair beyond TEDS's size
limits is not scored: its scores are None, its `error` says why, and the means leave it out.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trivia.engine.consistency import check_output
from trivia.engine.images import image_key
from trivia.engine.labelled import LabelledTable
from trivia.engine.prompts import PROMPT_VERSION, prompt_id, recognition_prompt
from trivia.engine.sampling_params import GREEDY
from trivia.engine.store import ResultStore, work_key
from trivia.metrics import TableTooLarge, teds
from trivia.tables import TableFormat, normalize_html, to_html

__all__ = [
    "EvalSummary",
    "Prediction",
    "TableScore",
    "eval_key",
    "load_predictions",
    "predict",
    "score_predictions",
    "score_table",
    "summarise",
]

METRICS = ("teds", "teds_s", "teds_norm", "teds_s_norm")


@dataclass(frozen=True, slots=True)
class Prediction:
    """A model's output for one table; `seconds` is the call's time (None for a file's)."""

    text: str
    finish_reason: str | None = None
    seconds: float | None = None


@dataclass(frozen=True, slots=True)
class TableScore:
    """One table's scores (None where not computed) and what the prediction was."""

    name: str
    teds: float | None
    teds_s: float | None
    teds_norm: float | None
    teds_s_norm: float | None
    valid: bool  # complete and holding a table (`check_output`)
    reason: str | None  # why not valid
    seconds: float | None
    error: str | None
    prediction: str
    truth: str

    def metric(self, name: str) -> float | None:
        return getattr(self, name)


def score_table(prediction: str, truth: str, *, normalize: bool = True) -> dict[str, float | None]:
    """TEDS and TEDS-S of `prediction` (OTSL or HTML) against `truth` (HTML), raw and normalised.

    The normalised scores are None when `normalize` is false. An empty prediction scores 0 (as
    in PubTabNet's scorer; converting it would give an empty table, which TEDS scores above 0).
    Raises `TableTooLarge`.
    """
    if not prediction.strip():
        zero = 0.0 if normalize else None
        return {"teds": 0.0, "teds_s": 0.0, "teds_norm": zero, "teds_s_norm": zero}
    pred_html = to_html(prediction)
    scores: dict[str, float | None] = {
        "teds": teds(pred_html, truth),
        "teds_s": teds(pred_html, truth, structure_only=True),
        "teds_norm": None,
        "teds_s_norm": None,
    }
    if normalize:
        pred_norm, truth_norm = normalize_html(pred_html), normalize_html(truth)
        scores["teds_norm"] = teds(pred_norm, truth_norm)
        scores["teds_s_norm"] = teds(pred_norm, truth_norm, structure_only=True)
    return scores


def score_predictions(
    tables: Sequence[LabelledTable],
    predictions: Mapping[str, Prediction | str],
    *,
    normalize: bool = True,
) -> list[TableScore]:
    """A `TableScore` per labelled table, in order; a table with no prediction scores 0."""
    out = []
    for table in tables:
        given = predictions.get(table.name)
        pred = given if isinstance(given, Prediction) else Prediction(given or "")
        check = check_output(pred.text, pred.finish_reason)
        error = None
        try:
            scores = score_table(pred.text, table.html, normalize=normalize)
        except TableTooLarge as exc:
            scores = dict.fromkeys(METRICS)
            error = str(exc)
        if given is None:
            error = "no prediction"
        out.append(
            TableScore(
                name=table.name,
                valid=check.valid,
                reason=check.reason,
                seconds=pred.seconds,
                error=error,
                prediction=pred.text,
                truth=table.html,
                **scores,
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class EvalSummary:
    """Overall means (None when nothing was scored), counts, and the tables to look at."""

    tables: int
    scored: int
    valid: int
    means: dict[str, float | None]
    worst: list[TableScore]  # lowest raw TEDS first
    slowest: list[TableScore]  # longest model call first (empty for predictions from a file)

    def as_dict(self) -> dict[str, Any]:
        def brief(score: TableScore) -> dict[str, Any]:
            return {"name": score.name, "seconds": score.seconds} | {
                m: score.metric(m) for m in METRICS
            }

        return {
            "tables": self.tables,
            "scored": self.scored,
            "valid": self.valid,
            "means": self.means,
            "worst": [brief(s) for s in self.worst],
            "slowest": [brief(s) for s in self.slowest],
        }


def summarise(scores: Sequence[TableScore], *, top: int = 10) -> EvalSummary:
    """Means over the scored tables, and the `top` worst and slowest."""
    scored = [s for s in scores if s.teds is not None]
    means: dict[str, float | None] = {}
    for name in METRICS:
        values = [v for s in scored if (v := s.metric(name)) is not None]
        means[name] = sum(values) / len(values) if values else None
    worst = sorted(scored, key=lambda s: (s.teds, s.name))[:top]
    timed = [s for s in scores if s.seconds is not None]
    slowest = sorted(timed, key=lambda s: (-(s.seconds or 0.0), s.name))[:top]
    return EvalSummary(
        tables=len(scores),
        scored=len(scored),
        valid=sum(s.valid for s in scores),
        means=means,
        worst=worst,
        slowest=slowest,
    )


def eval_key(
    key_of_image: str,
    model: str,
    fmt: TableFormat,
    *,
    max_tokens: int,
    max_pixels: int,
    min_pixels: int,
) -> str:
    """The resume key of one table's prediction: the image and the settings that change it."""
    return work_key(
        "eval", key_of_image, model, prompt_id(fmt), fmt, max_tokens, max_pixels, min_pixels
    )


async def predict(
    client: Any,
    tables: Sequence[LabelledTable],
    store: ResultStore,
    *,
    fmt: TableFormat = "otsl",
    max_tokens: int = 4096,
    workers: int = 16,
    on_outcome: Callable[[str, str], None] | None = None,
) -> dict[str, Prediction | str]:
    """The model's prediction for every table (from `store` when already made), by name.

    `client` is a `VLMClient`. Each call is one recognition at temperature 0; finished ones are
    written to `store` at once. `on_outcome(name, status)` reports "done", "skipped" or
    "failed: …"; a failed table is missing from the result (and scores 0).
    """
    from trivia.llm.errors import LLMError

    model = await client.model_name()
    prompt = recognition_prompt(fmt)
    queue: asyncio.Queue[LabelledTable] = asyncio.Queue()
    for table in tables:
        queue.put_nowait(table)
    found: dict[str, Prediction | str] = {}
    written = {record["key"]: record for record in store.records()}

    def report(name: str, status: str) -> None:
        if on_outcome is not None:
            on_outcome(name, status)

    async def one(table: LabelledTable) -> None:
        if table.image is None:
            report(table.name, "failed: the dataset names no image for it")
            return
        try:
            source = await asyncio.to_thread(image_key, table.image)
        except OSError as exc:
            report(table.name, f"failed: cannot read {table.image}: {exc}")
            return
        key = eval_key(
            source,
            model,
            fmt,
            max_tokens=max_tokens,
            max_pixels=client.max_pixels,
            min_pixels=client.min_pixels,
        )
        if key in written:
            record = written[key]
            found[table.name] = Prediction(
                record["prediction"], record.get("finish_reason"), record.get("seconds")
            )
            report(table.name, "skipped")
            return
        try:
            url = await asyncio.to_thread(client.encode, table.image)
        except (OSError, ValueError) as exc:
            report(table.name, f"failed: {exc}")
            return
        started = time.monotonic()
        try:
            reply = await client.complete(
                prompt, image_url=url, sampling=GREEDY.with_max_tokens(max_tokens)
            )
        except LLMError as exc:
            report(table.name, f"failed: {exc}")
            return
        seconds = round(time.monotonic() - started, 3)
        store.write(
            {
                "key": key,
                "name": table.name,
                "image": str(table.image),
                "image_key": source,
                "model": model,
                "prompt_version": PROMPT_VERSION,
                "format": fmt,
                "prediction": reply.text,
                "finish_reason": reply.finish_reason,
                "seconds": seconds,
            }
        )
        found[table.name] = Prediction(reply.text, reply.finish_reason, seconds)
        report(table.name, "done")

    async def worker() -> None:
        while True:
            try:
                table = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await one(table)

    await asyncio.gather(*(worker() for _ in range(max(1, workers))))
    return found


def load_predictions(path: Path) -> dict[str, Prediction | str]:
    """A `{name: html}` JSON file (PubTabNet's `sample_pred.json`) as predictions."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ValueError(f"{path}: expected a JSON object of name → predicted table")
    return dict(data)
