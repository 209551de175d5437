"""`trivia data sample`: K recognitions of each image, their validity and consistency.

Each image is encoded once (`VLMClient.encode`), recognised K times concurrently with every
sampling field sent explicitly (`SamplingParams`; a seed, when given, derived per image and
sample), and scored (`consistency`, under the `invalid` rule). One record per image goes to a
`ResultStore` through the runner (`trivia.engine.runner`), keyed by the image's hash, the model's
fingerprint and every setting that changes the result, so a re-run skips finished images and an
interrupted run keeps what it wrote. An image whose calls fail after the client's retries gets
no record (a re-run tries it again); an unreadable file is recorded once as unreadable.

A record (one JSON line):

    {"key", "image": absolute path, "image_key": sha256, "model", "model_fingerprint",
     "prompt_version", "format", "k", "sampling": {temperature, top_p, top_k, min_p,
     repetition_penalty, seed, max_tokens}, "seeds": per-sample seeds (null unseeded),
     "invalid_rule", "max_pixels", "min_pixels",
     "outputs": [{"text", "finish_reason", "valid", "reason"}, …K],
     "teds": K×K pairwise TEDS (0 where either output is invalid),
     "consistency": mean over the pairs under the rule, "consensus": index of the output with
     the highest mean TEDS to the others (null when none is valid), "n_valid", "seconds"}
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trivia.engine.consistency import InvalidRule, consistency
from trivia.engine.images import image_key
from trivia.engine.prompts import PROMPT_VERSION, prompt_id, recognition_prompt
from trivia.engine.runner import Outcome, RunSummary, Unreadable, file_identity, run_job
from trivia.engine.sampling_params import SamplingParams
from trivia.engine.store import ResultStore, work_key
from trivia.engine.vlm import VLMClient
from trivia.llm.errors import LLMError
from trivia.tables import TableFormat


@dataclass(frozen=True, slots=True)
class SampleSettings:
    """What `trivia data sample` asks of the model and how it scores the answers."""

    k: int = 4
    fmt: TableFormat = "otsl"
    sampling: SamplingParams = field(default_factory=SamplingParams)
    invalid: InvalidRule = "zero"

    def __post_init__(self) -> None:
        if self.k < 2:
            raise ValueError("k must be at least 2 (consistency compares outputs in pairs)")
        if self.invalid not in ("zero", "exclude"):
            raise ValueError("invalid must be 'zero' or 'exclude'")
        recognition_prompt(self.fmt)  # rejects an unknown format


def sample_key(
    key_of_image: str,
    fingerprint: Any,
    settings: SampleSettings,
    *,
    max_pixels: int,
    min_pixels: int,
) -> str:
    """The resume key of one image's sample: the image, the model's fingerprint and every
    setting that changes the record."""
    return work_key(
        "sample",
        key_of_image,
        fingerprint,
        prompt_id(settings.fmt),
        settings.fmt,
        settings.k,
        sorted(settings.sampling.as_record().items()),
        settings.invalid,
        max_pixels,
        min_pixels,
    )


@dataclass
class SampleJob:
    """`trivia data sample` as a runner job: one image in, one scored record out."""

    client: VLMClient
    settings: SampleSettings
    model: str
    fingerprint: dict[str, Any]
    _prompt: str = ""
    _sources: dict[Path, str] = field(default_factory=dict)  # image → hash, from key to run

    def __post_init__(self) -> None:
        self._prompt = recognition_prompt(self.settings.fmt)

    def name(self, item: Path) -> str:
        return str(item)

    def identity(self, item: Path) -> str:
        return file_identity(item)

    async def key(self, item: Path) -> str:
        try:
            source = await asyncio.to_thread(image_key, item)
        except OSError as exc:
            raise Unreadable(f"cannot read: {exc}") from None
        self._sources[item] = source
        return sample_key(
            source,
            self.fingerprint,
            self.settings,
            max_pixels=self.client.max_pixels,
            min_pixels=self.client.min_pixels,
        )

    async def run(self, item: Path, key: str) -> dict[str, Any]:
        settings, client = self.settings, self.client
        source = self._sources.pop(item, None) or await asyncio.to_thread(image_key, item)
        started = time.monotonic()
        try:
            url = await asyncio.to_thread(client.encode, item)
        except (OSError, ValueError) as exc:
            raise Unreadable(str(exc)) from None
        failure: LLMError | None = None
        try:  # one failed call cancels the image's others: the image is retried as a whole
            async with asyncio.TaskGroup() as group:
                calls = [
                    group.create_task(
                        client.complete(
                            self._prompt,
                            image_url=url,
                            sampling=settings.sampling,
                            seed_parts=(source, index),
                        )
                    )
                    for index in range(settings.k)
                ]
        except* LLMError as errors:
            failure = errors.exceptions[0]  # type: ignore[assignment]
        if failure is not None:
            raise failure
        replies = [call.result() for call in calls]
        texts = [reply.text for reply in replies]
        finishes = [reply.finish_reason for reply in replies]
        scored = await asyncio.to_thread(consistency, texts, finishes, invalid=settings.invalid)
        return {
            "image": str(Path(item).resolve()),
            "image_key": source,
            "model": self.model,
            "model_fingerprint": self.fingerprint,
            "prompt_version": PROMPT_VERSION,
            "format": settings.fmt,
            "k": settings.k,
            "sampling": settings.sampling.as_record(),
            "seeds": [settings.sampling.seed_for(source, i) for i in range(settings.k)],
            "invalid_rule": settings.invalid,
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


async def sample_images(
    client: VLMClient,
    images: Iterable[Path],
    store: ResultStore,
    settings: SampleSettings,
    *,
    unreadable: ResultStore | None = None,
    workers: int = 8,
    on_outcome: Callable[[Outcome], None] | None = None,
    model_revision: str | None = None,
    **abort: Any,
) -> RunSummary:
    """Sample every image not yet in `store`; `workers` images are in progress at once.

    Requests run concurrently up to the client's per-endpoint limit; `workers` only bounds how
    many images are held in memory (use about the client's total slots divided by K, or more).
    `abort`: the runner's `abort_after`, `probe_every_s`, `probe_for_s`.
    """
    fingerprint = await client.model_fingerprint(model_revision)
    job = SampleJob(client, settings, fingerprint["model"], fingerprint)
    return await run_job(
        job,
        (Path(path) for path in images),
        store,
        unreadable=unreadable,
        workers=workers,
        on_outcome=on_outcome,
        probe=client.probe,
        **abort,
    )
