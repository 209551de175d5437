"""`trivia data sample`: K recognitions of each image, their validity and consistency.

Each image is encoded once (`VLMClient.encode`), recognised K times concurrently at the given
temperature, and scored (`consistency`); one record per image goes to a `ResultStore`, keyed by
the image's hash and every setting that changes the result, so a re-run skips finished images
and an interrupted run keeps what it wrote. An image whose calls fail after the client's retries
gets no record (a re-run tries it again) and is reported.

A record (one JSON line):

    {"key", "image": absolute path, "image_key": sha256, "model", "prompt_version", "format",
     "k", "temperature", "max_tokens", "max_pixels", "min_pixels",
     "outputs": [{"text", "finish_reason", "valid", "reason"}, …K],
     "teds": K×K pairwise TEDS (0 where either output is invalid),
     "consistency": mean over the pairs, "consensus": index of the output with the highest mean
     TEDS to the others (null when none is valid), "n_valid", "seconds"}
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trivia.engine.consistency import consistency
from trivia.engine.images import image_key
from trivia.engine.prompts import PROMPT_VERSION, prompt_id, recognition_prompt
from trivia.engine.store import ResultStore, work_key
from trivia.engine.vlm import VLMClient
from trivia.llm.errors import LLMError
from trivia.tables import TableFormat

__all__ = ["SampleOutcome", "SampleSettings", "SampleSummary", "sample_images", "sample_key"]


@dataclass(frozen=True, slots=True)
class SampleSettings:
    """What `trivia data sample` asks of the model."""

    k: int = 4
    temperature: float = 1.0
    fmt: TableFormat = "otsl"
    max_tokens: int = 4096

    def __post_init__(self) -> None:
        if self.k < 2:
            raise ValueError("k must be at least 2 (consistency compares outputs in pairs)")
        if self.temperature < 0 or self.max_tokens < 1:
            raise ValueError("temperature must be >= 0 and max_tokens >= 1")
        recognition_prompt(self.fmt)  # rejects an unknown format


def sample_key(
    key_of_image: str, model: str, settings: SampleSettings, *, max_pixels: int, min_pixels: int
) -> str:
    """The resume key of one image's sample: the image and every setting that changes it."""
    return work_key(
        "sample",
        key_of_image,
        model,
        prompt_id(settings.fmt),
        settings.fmt,
        settings.k,
        float(settings.temperature),
        settings.max_tokens,
        max_pixels,
        min_pixels,
    )


@dataclass(frozen=True, slots=True)
class SampleOutcome:
    """What happened to one image: "done", "skipped" (already written) or "failed"."""

    image: Path
    status: str
    consistency: float | None = None
    error: str | None = None


@dataclass
class SampleSummary:
    """Counts of one run and the images that failed (with why)."""

    done: int = 0
    skipped: int = 0
    failed: list[SampleOutcome] = field(default_factory=list)

    def add(self, outcome: SampleOutcome) -> None:
        if outcome.status == "done":
            self.done += 1
        elif outcome.status == "skipped":
            self.skipped += 1
        else:
            self.failed.append(outcome)


async def sample_images(
    client: VLMClient,
    images: Sequence[Path],
    store: ResultStore,
    settings: SampleSettings,
    *,
    workers: int = 8,
    on_outcome: Callable[[SampleOutcome], None] | None = None,
) -> SampleSummary:
    """Sample every image not yet in `store`; `workers` images are in progress at once.

    Requests run concurrently up to the client's per-endpoint limit; `workers` only bounds how
    many images are held in memory (use about the client's total slots divided by K, or more).
    """
    model = await client.model_name()
    prompt = recognition_prompt(settings.fmt)
    queue: asyncio.Queue[Path] = asyncio.Queue()
    for path in images:
        queue.put_nowait(Path(path))
    summary = SampleSummary()

    async def one(path: Path) -> SampleOutcome:
        try:
            source = await asyncio.to_thread(image_key, path)
        except OSError as exc:
            return SampleOutcome(path, "failed", error=f"cannot read: {exc}")
        key = sample_key(
            source, model, settings, max_pixels=client.max_pixels, min_pixels=client.min_pixels
        )
        if store.done(key):
            return SampleOutcome(path, "skipped")
        started = time.monotonic()
        try:
            url = await asyncio.to_thread(client.encode, path)
        except (OSError, ValueError) as exc:
            return SampleOutcome(path, "failed", error=str(exc))
        failure: LLMError | None = None
        try:  # one failed call cancels the image's others: the image is retried as a whole
            async with asyncio.TaskGroup() as group:
                calls = [
                    group.create_task(
                        client.complete(
                            prompt,
                            image_url=url,
                            temperature=settings.temperature,
                            max_tokens=settings.max_tokens,
                        )
                    )
                    for _ in range(settings.k)
                ]
        except* LLMError as errors:
            failure = errors.exceptions[0]  # type: ignore[assignment]
        if failure is not None:
            return SampleOutcome(path, "failed", error=str(failure))
        replies = [call.result() for call in calls]
        texts = [reply.text for reply in replies]
        finishes = [reply.finish_reason for reply in replies]
        scored = await asyncio.to_thread(consistency, texts, finishes)
        record: dict[str, Any] = {
            "key": key,
            "image": str(path.resolve()),
            "image_key": source,
            "model": model,
            "prompt_version": PROMPT_VERSION,
            "format": settings.fmt,
            "k": settings.k,
            "temperature": float(settings.temperature),
            "max_tokens": settings.max_tokens,
            "max_pixels": client.max_pixels,
            "min_pixels": client.min_pixels,
            "outputs": [
                {
                    "text": text,
                    "finish_reason": finish,
                    "valid": check.valid,
                    "reason": check.reason,
                }
                for text, finish, check in zip(texts, finishes, scored.checks, strict=True)
            ],
            "teds": [list(row) for row in scored.teds],
            "consistency": scored.score,
            "consensus": scored.consensus,
            "n_valid": scored.n_valid,
            "seconds": round(time.monotonic() - started, 3),
        }
        store.write(record)
        return SampleOutcome(path, "done", consistency=scored.score)

    async def worker() -> None:
        while True:
            try:
                path = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            outcome = await one(path)
            summary.add(outcome)
            if on_outcome is not None:
                on_outcome(outcome)

    await asyncio.gather(*(worker() for _ in range(max(1, workers))))
    return summary
