"""`trivia data qa`: verified, diverse question-answer pairs for each selected image.

For one image (a record of `trivia data sample` / `select`: ``image``, ``image_key``, the K
recognition ``outputs``), in rounds until the verified pool holds `QASettings.pool_size`
questions or `rounds` are done:

1. generation: the generator VLM sees the image and proposes `candidates_per_round` questions as
   JSON (`qa_prompts`; later rounds are told what was already proposed); unreadable replies and
   items are counted (``bad_json``, ``malformed``, ``multi_value``);
2. filters (`qa_filters`): arithmetic, comparison and layout questions, long or list answers go;
   words quoted from the consensus recognition's cells are labels, not operations;
3. questions already proposed in the same words go (``duplicate``) before any verifier call;
4. blind check and verification, both by the verifier, concurrently (one failed call cancels
   the image's other calls; the image is retried as a whole): answered without the image
   with token F1 ≥ `without_threshold` → ``blind_answerable``; answered with the image with
   token F1 < `with_threshold` against the generator's answer → ``wrong``;
5. near-duplicates of questions verified earlier go (`qa_dedupe`, ``duplicate``).

Then each verified answer is located in the consensus recognition (`qa_grounding`) and up to
`per_image` questions are chosen to cover the table's rows and columns (`qa_diversity`); the
rest are ``surplus``. Every proposed item ends as kept or under exactly one drop reason.

Images run concurrently (`workers` at a time) and their calls concurrently within each image,
bounded by the clients' per-endpoint limits. Each finished image is one `ResultStore` record,
keyed by the image and every setting that changes the result, so a re-run skips it; an image
whose calls fail after the client's retries gets no record (a re-run tries it again).
`qa_dataset.write_dataset` turns the records into training rows.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from trivia.engine.images import image_key
from trivia.engine.qa_candidate import DROP_REASONS, Candidate, Location
from trivia.engine.qa_dataset import recognitions, table_format
from trivia.engine.qa_dedupe import dedupe
from trivia.engine.qa_diversity import coverage, select_diverse
from trivia.engine.qa_filters import rejection_reason
from trivia.engine.qa_grounding import Grounding, consensus_index, ground, locate_answer
from trivia.engine.qa_prompts import (
    PROMPT_VERSION,
    blind_prompt,
    generation_prompt,
    parse_candidates,
    verification_prompt,
)
from trivia.engine.runner import Outcome, RunSummary, Unreadable, file_identity, run_job
from trivia.engine.sampling_params import GREEDY, SamplingParams
from trivia.engine.store import ResultStore, work_key
from trivia.engine.vlm import VLMClient
from trivia.llm.errors import LLMError
from trivia.metrics import qa_f1
from trivia.settings import ENGINE


@dataclass(frozen=True, slots=True)
class QASettings:
    """Everything that changes which questions an image gets (all part of its work key)."""

    per_image: int = 30
    rounds: int = 3
    candidates_per_round: int = 40
    with_threshold: float = 0.8
    without_threshold: float = 0.8
    seed: int = 0
    #: Generation stops once this many times `per_image` questions are verified.
    pool_factor: float = 2.0
    #: The generator samples (every field sent: a server's model defaults are greedy).
    generator_temperature: float = 0.7
    generator_top_p: float = 1.0
    generator_top_k: int = -1
    generator_min_p: float = 0.0
    generator_repetition_penalty: float = 1.0
    generator_max_tokens: int = ENGINE.max_tokens
    verifier_max_tokens: int = 64

    def __post_init__(self) -> None:
        if self.per_image < 1 or self.rounds < 1 or self.candidates_per_round < 1:
            raise ValueError("per_image, rounds and candidates_per_round must be at least 1")
        if not (0 <= self.with_threshold <= 1 and 0 <= self.without_threshold <= 1):
            raise ValueError("thresholds must be in [0, 1]")
        if self.pool_factor < 1:
            raise ValueError("pool_factor must be at least 1")

    @property
    def generator_sampling(self) -> SamplingParams:
        """The generator's fields; each round's seed is derived from `seed`, image and round."""
        return SamplingParams(
            temperature=self.generator_temperature,
            top_p=self.generator_top_p,
            top_k=self.generator_top_k,
            min_p=self.generator_min_p,
            repetition_penalty=self.generator_repetition_penalty,
            seed=self.seed,
            max_tokens=self.generator_max_tokens,
        )

    @property
    def verifier_sampling(self) -> SamplingParams:
        """The verifier decodes greedily, every field named."""
        return GREEDY.with_max_tokens(self.verifier_max_tokens)

    @property
    def pool_size(self) -> int:
        """How many verified questions end generation early."""
        return math.ceil(self.per_image * self.pool_factor)


def qa_key(
    key_of_image: str,
    outputs: Sequence[str],
    generator: VLMClient,
    verifier: VLMClient,
    models: tuple[Any, Any],
    settings: QASettings,
) -> str:
    """The resume key of one image's questions: the image, the recognitions the answers are
    located in, both models' fingerprints and the pixel limits they see the image at, and every
    setting."""
    return work_key(
        "qa",
        key_of_image,
        work_key(*outputs),
        *models,
        [generator.max_pixels, generator.min_pixels, verifier.max_pixels, verifier.min_pixels],
        PROMPT_VERSION,
        sorted(asdict(settings).items()),
    )


def consensus_grounding(record: Mapping[str, Any]) -> tuple[int | None, Grounding | None]:
    """The consensus recognition of a sample record (its index) parsed for locating answers.

    The record's own ``consensus`` is used when it names one of its outputs; else it is computed
    (`consensus_index`).
    """
    texts, valid = recognitions(record)
    index = record.get("consensus")
    if not (isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(texts)):
        index = consensus_index(texts, valid)
    if index is None:
        return None, None
    return index, ground(texts[index])


@dataclass(eq=False)
class _ImageRun:
    """The rounds, checks and selection for one image (see the module docstring)."""

    generator: VLMClient
    verifier: VLMClient
    settings: QASettings
    record: Mapping[str, Any]
    replies: ResultStore | None = None
    key: str = ""
    drops: Counter[str] = field(default_factory=Counter, init=False)
    #: Passed the filters, in the order proposed.
    proposed: list[Candidate] = field(default_factory=list, init=False)
    verified: list[Candidate] = field(default_factory=list, init=False)
    rejected: list[dict[str, Any]] = field(default_factory=list, init=False)
    #: Saved only if the image fails.
    new_replies: list[dict[str, Any]] = field(default_factory=list, init=False)
    candidates: int = field(default=0, init=False)
    rounds: int = field(default=0, init=False)

    def _reject(self, reason: str, candidate: Candidate | None = None, **details: Any) -> None:
        self.drops[reason] += 1
        entry: dict[str, Any] = {"reason": reason}
        if candidate is not None:
            entry |= {
                "question": candidate.question,
                "answer": candidate.answer,
                "round": candidate.round,
            }
        self.rejected.append(entry | details)

    async def run(self, key_of_image: str) -> dict[str, Any]:
        image = Path(self.record["image"])
        consensus, grounding = await asyncio.to_thread(consensus_grounding, self.record)
        table_text = grounding.texts() if grounding is not None else []
        generator_url, verifier_url = await asyncio.to_thread(self._encode, image)
        for round_ in range(self.settings.rounds):
            self.rounds += 1
            await self._round(round_, key_of_image, generator_url, verifier_url, table_text)
            if len(self.verified) >= self.settings.pool_size:
                break
        locations = [
            locate_answer(grounding, c.answer, c.question) if grounding is not None else None
            for c in self.verified
        ]
        picked = select_diverse(locations, self.settings.per_image)
        chosen = set(picked)
        for index, candidate in enumerate(self.verified):
            if index not in chosen:
                self._reject("surplus", candidate, location=_location_json(locations[index]))
        kept = [self.verified[i] for i in picked]
        kept_locations = [locations[i] for i in picked]
        shape = (grounding.n_rows, grounding.n_cols) if grounding is not None else (0, 0)
        reach = coverage(kept_locations, *shape)
        texts, _ = recognitions(self.record)
        return {
            "image": str(image),
            "image_key": key_of_image,
            "format": table_format(self.record),
            "qa_pairs": [{"question": c.question, "answer": c.answer} for c in kept],
            "locations": [_location_json(loc) for loc in kept_locations],
            "candidates": self.candidates,
            "verified": len(self.verified),
            "drops": {reason: self.drops[reason] for reason in DROP_REASONS if self.drops[reason]},
            "rejected": self.rejected,
            "rounds": self.rounds,
            "consensus": consensus,
            "recognition": texts[consensus] if consensus is not None else None,
            "table": {"rows": shape[0], "cols": shape[1]},
            "coverage": {
                "rows": reach.rows,
                "cols": reach.cols,
                "row_share": round(reach.row_share, 4),
                "col_share": round(reach.col_share, 4),
            },
            "sampling": {
                "generator": self.settings.generator_sampling.as_record(),
                "verifier": self.settings.verifier_sampling.as_record(),
            },
        }

    def _encode(self, image: Path) -> tuple[str, str]:
        try:
            generator_url = self.generator.encode(image)
            same_limits = (self.generator.max_pixels, self.generator.min_pixels) == (
                self.verifier.max_pixels,
                self.verifier.min_pixels,
            )
            return generator_url, generator_url if same_limits else self.verifier.encode(image)
        except (OSError, ValueError) as exc:
            raise Unreadable(str(exc)) from None

    async def _generate(self, round_: int, key_of_image: str, generator_url: str) -> str:
        """The generator's reply for this round: read back when an earlier run of the image
        saved it (an outage later in the image, the verifier's, does not cost it again)."""
        saved_key = work_key("reply", self.key, round_)
        saved = self.replies.get(saved_key) if self.replies is not None else None
        if saved is not None:
            return str(saved["reply"])
        prompt = generation_prompt(
            self.settings.candidates_per_round, [c.question for c in self.proposed]
        )
        reply = await self.generator.complete(
            prompt,
            image_url=generator_url,
            sampling=self.settings.generator_sampling,
            seed_parts=(key_of_image, round_),
        )
        self.new_replies.append({"key": saved_key, "round": round_, "reply": reply.text})
        return reply.text

    def save_replies(self) -> None:
        """Keep this run's generator replies for the next (called when the image failed)."""
        if self.replies is not None:
            for reply in self.new_replies:
                self.replies.write(reply)

    async def _round(
        self,
        round_: int,
        key_of_image: str,
        generator_url: str,
        verifier_url: str,
        table_text: Sequence[str],
    ) -> None:
        text = await self._generate(round_, key_of_image, generator_url)
        parsed = parse_candidates(text, round=round_)
        self.candidates += len(parsed.candidates) + sum(
            n for reason, n in parsed.drops.items() if reason != "bad_json"
        )
        if parsed.drops["bad_json"]:
            self._reject("bad_json", None, round=round_, reply=text[:2000])
        for reason, item in parsed.rejected:
            self._reject(reason, None, round=round_, item=item)
        allowed = []
        for candidate in parsed.candidates:
            reason = rejection_reason(candidate.question, candidate.answer, table_text=table_text)
            if reason is None:
                allowed.append(candidate)
            else:
                self._reject(reason, candidate)
        fresh, repeated = dedupe(allowed, earlier=self.proposed, exact_only=True)
        for candidate in repeated:
            self._reject("duplicate", candidate, stage="before verification")
        self.proposed.extend(fresh)
        async with asyncio.TaskGroup() as group:  # a failed call cancels the image's others
            checks = [group.create_task(self._check(c, verifier_url)) for c in fresh]
        passed = []
        for candidate, check in zip(fresh, checks, strict=True):
            verdict, details = check.result()
            if verdict is None:
                passed.append(candidate)
            else:
                self._reject(verdict, candidate, **details)
        new, duplicates = dedupe(passed, earlier=self.verified)
        for candidate in duplicates:
            self._reject("duplicate", candidate, stage="after verification")
        self.verified.extend(new)

    async def _check(
        self, candidate: Candidate, verifier_url: str
    ) -> tuple[str | None, dict[str, Any]]:
        """(None, …) when the verifier confirms the answer with the image and misses it
        without; else the drop reason. Either way, what the verifier said and its F1."""
        sampling = self.settings.verifier_sampling
        async with asyncio.TaskGroup() as group:
            blind = group.create_task(
                self.verifier.complete(blind_prompt(candidate.question), sampling=sampling)
            )
            seen = group.create_task(
                self.verifier.complete(
                    verification_prompt(candidate.question),
                    image_url=verifier_url,
                    sampling=sampling,
                )
            )
        blind_f1 = qa_f1(blind.result().text, candidate.answer)
        seen_f1 = qa_f1(seen.result().text, candidate.answer)
        details = {
            "without_image": blind.result().text,
            "without_image_f1": round(blind_f1, 4),
            "with_image": seen.result().text,
            "with_image_f1": round(seen_f1, 4),
        }
        if blind_f1 >= self.settings.without_threshold:
            return "blind_answerable", details
        if seen_f1 < self.settings.with_threshold:
            return "wrong", details
        return None, details


def _first(group: BaseExceptionGroup) -> BaseException:
    """The first error in a (nested) exception group."""
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


def _location_json(location: Location | None) -> list[int] | None:
    if location is None:
        return None
    return [location.row, location.col, location.rowspan, location.colspan]


@dataclass
class QAJob:
    """`trivia data qa` as a runner job: one selected record in, one image's questions out."""

    generator: VLMClient
    verifier: VLMClient
    settings: QASettings
    fingerprints: tuple[dict[str, Any], dict[str, Any]]
    replies: ResultStore | None = None

    def name(self, item: Mapping[str, Any]) -> str:
        return str(item["image"])

    def identity(self, item: Mapping[str, Any]) -> str:
        return file_identity(Path(item["image"]))

    async def key(self, item: Mapping[str, Any]) -> str:
        known = item.get("image_key")
        source = known if isinstance(known, str) and known else None
        if source is None:
            try:
                source = await asyncio.to_thread(image_key, Path(item["image"]))
            except OSError as exc:
                raise Unreadable(f"cannot read: {exc}") from None
        texts, _ = recognitions(item)
        return qa_key(
            source, texts, self.generator, self.verifier, self.fingerprints, self.settings
        )

    async def run(self, item: Mapping[str, Any], key: str) -> dict[str, Any]:
        known = item.get("image_key")
        source = known if isinstance(known, str) and known else None
        source = source or await asyncio.to_thread(image_key, Path(item["image"]))
        started = time.monotonic()
        run = _ImageRun(self.generator, self.verifier, self.settings, item, self.replies, key)
        try:
            result = await run.run(source)
        except* LLMError as errors:
            run.save_replies()
            raise _first(errors) from None
        except* Unreadable as errors:
            raise _first(errors) from None
        return {
            **result,
            "generator": self.fingerprints[0]["model"],
            "verifier": self.fingerprints[1]["model"],
            "model_fingerprints": {
                "generator": self.fingerprints[0],
                "verifier": self.fingerprints[1],
            },
            "seconds": round(time.monotonic() - started, 3),
        }


async def generate_qa(
    generator: VLMClient,
    verifier: VLMClient,
    records: Iterable[Mapping[str, Any]],
    store: ResultStore,
    settings: QASettings,
    *,
    workers: int = 8,
    replies: ResultStore | None = None,
    unreadable: ResultStore | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    model_revisions: tuple[str | None, str | None] = (None, None),
    **abort: Any,
) -> tuple[RunSummary, list[str]]:
    """Questions for every record not yet in `store`; (summary, the work key of every record).

    `records` are read as they are needed (a generator over a file is fine). `workers` images
    are in progress at once; their calls are bounded by the clients' per-endpoint limits.
    `replies` keeps each generator reply (per image and round) for the next run. The keys say
    which store records make the dataset.
    """
    fingerprints = (
        await generator.model_fingerprint(model_revisions[0]),
        await verifier.model_fingerprint(model_revisions[1]),
    )
    job = QAJob(generator, verifier, settings, fingerprints, replies)
    keys: list[str] = []

    class _KeyedJob:
        """The job, noting each key in input order as it is made."""

        name = staticmethod(job.name)
        identity = staticmethod(job.identity)
        run = staticmethod(job.run)

        @staticmethod
        async def key(item: Mapping[str, Any]) -> str:
            key = await job.key(item)
            keys.append(key)
            return key

    summary = await run_job(
        _KeyedJob(),
        records,
        store,
        unreadable=unreadable,
        workers=workers,
        on_outcome=on_outcome,
        probe=generator.probe,
        **abort,
    )
    return summary, keys
