"""`trivia eval`'s model predictions: one greedy recognition per labelled table, resumable.

A runner job (`trivia.engine.runner`): each table's image is recognised once with every sampling
field named (`GREEDY`), keyed by the image, the model's fingerprint and the settings, and written
at once, so a re-run asks only for what is missing. A table without an image or with an
unreadable one is reported as unreadable.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from trivia.engine.images import image_key
from trivia.engine.labelled import LabelledTable
from trivia.engine.prompts import PROMPT_VERSION, prompt_id, recognition_prompt
from trivia.engine.runner import Outcome, RunSummary, Unreadable, file_identity, run_job
from trivia.engine.sampling_params import GREEDY
from trivia.engine.store import ResultStore, work_key
from trivia.engine.vlm import VLMClient
from trivia.settings import ENGINE
from trivia.tables import TableFormat


@dataclass(frozen=True, slots=True)
class Prediction:
    """A model's output for one table; `seconds` is the call's time (None for a file's)."""

    text: str
    finish_reason: str | None = None
    seconds: float | None = None


def eval_key(
    key_of_image: str,
    fingerprint: Any,
    fmt: TableFormat,
    *,
    max_tokens: int,
    max_pixels: int,
    min_pixels: int,
) -> str:
    """The resume key of one table's prediction: the image, the model and the settings."""
    return work_key(
        "eval", key_of_image, fingerprint, prompt_id(fmt), fmt, max_tokens, max_pixels, min_pixels
    )


@dataclass
class PredictJob:
    """One labelled table in, the model's recognition out."""

    client: VLMClient
    fmt: TableFormat
    max_tokens: int
    fingerprint: dict[str, Any]

    def name(self, item: LabelledTable) -> str:
        return item.name

    def identity(self, item: LabelledTable) -> str | None:
        return None if item.image is None else file_identity(item.image)

    async def key(self, item: LabelledTable) -> str:
        if item.image is None:
            raise Unreadable("the dataset names no image for it")
        try:
            source = await asyncio.to_thread(image_key, item.image)
        except OSError as exc:
            raise Unreadable(f"cannot read {item.image}: {exc}") from None
        return eval_key(
            source,
            self.fingerprint,
            self.fmt,
            max_tokens=self.max_tokens,
            max_pixels=self.client.max_pixels,
            min_pixels=self.client.min_pixels,
        )

    async def run(self, item: LabelledTable, key: str) -> dict[str, Any]:
        assert item.image is not None
        try:
            url = await asyncio.to_thread(self.client.encode, item.image)
        except (OSError, ValueError) as exc:
            raise Unreadable(str(exc)) from None
        started = time.monotonic()
        reply = await self.client.complete(
            recognition_prompt(self.fmt),
            image_url=url,
            sampling=GREEDY.with_max_tokens(self.max_tokens),
        )
        return {
            "name": item.name,
            "image": str(item.image),
            "model": self.fingerprint["model"],
            "model_fingerprint": self.fingerprint,
            "prompt_version": PROMPT_VERSION,
            "format": self.fmt,
            "sampling": GREEDY.with_max_tokens(self.max_tokens).as_record(),
            "prediction": reply.text,
            "finish_reason": reply.finish_reason,
            "seconds": round(time.monotonic() - started, 3),
        }


async def predict(
    client: VLMClient,
    tables: Sequence[LabelledTable],
    store: ResultStore,
    *,
    fmt: TableFormat = "otsl",
    max_tokens: int = ENGINE.max_tokens,
    workers: int = 16,
    unreadable: ResultStore | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    model_revision: str | None = None,
    **abort: Any,
) -> tuple[dict[str, Prediction], RunSummary]:
    """The model's prediction for every table (from `store` when already made), by name, and
    the run's summary; a table that failed is missing (and scores 0)."""
    fingerprint = await client.model_fingerprint(model_revision)
    job = PredictJob(client, fmt, max_tokens, fingerprint)
    found: dict[str, Prediction] = {}

    def collect(outcome: Outcome) -> None:
        if outcome.record is not None:
            record = outcome.record
            found[outcome.name] = Prediction(
                record["prediction"], record.get("finish_reason"), record.get("seconds")
            )
        if on_outcome is not None:
            on_outcome(outcome)

    summary = await run_job(
        job,
        tables,
        store,
        unreadable=unreadable,
        workers=workers,
        on_outcome=collect,
        probe=client.probe,
        **abort,
    )
    return found, summary
