"""Before and after: the warm-started and the GRPO-trained model on the same tables, same decoding.

Each model recognises every table of a split with the same decoding (greedy, or sampled at the
training temperature from a fixed seed); the completions are scored against the tables' HTML
with TEDS and TEDS-S, raw and after ``normalize_html`` (OmniDocBench's preprocessing), and their
QA-F1 comes from the reward service, the same path the training reward takes. A completion the
service could not score is an error here, never a QA-F1 of 0.

Generation needs the ``train`` extra (torch, transformers); scoring does not.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from trivia.trainer.demo_data import DemoTable
from trivia.trainer.validation import mean_scores, table_scores


@dataclass(frozen=True, slots=True)
class Decoding:
    """How completions are drawn: greedy (``temperature`` 0) or ``samples`` per table."""

    temperature: float = 0.0
    samples: int = 1
    top_k: int = 0  # off, as ms-swift's GRPO default (-1)
    top_p: float = 1.0
    max_new_tokens: int = 56
    seed: int = 0

    @property
    def label(self) -> str:
        if self.temperature == 0:
            return "greedy"
        return f"T={self.temperature:g}, {self.samples} samples"


@dataclass(frozen=True, slots=True)
class SplitScores:
    """Mean scores of one model's completions on one split (every completion counts)."""

    teds: float
    teds_s: float
    teds_normalised: float
    teds_s_normalised: float
    qa_f1: float
    completions: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def score_split(
    tables: Sequence[DemoTable], completions: Sequence[Sequence[str]], qa_f1: Sequence[float]
) -> SplitScores:
    """Mean TEDS / TEDS-S (raw and normalised) of ``completions[i]`` against ``tables[i]``.

    A completion too large for TEDS is left out of the TEDS means, as in training's evaluation.

    ``qa_f1`` holds one score per completion, in the same order as the flattened completions.
    """
    scores = [
        table_scores(completion, table.html)
        for table, drawn in zip(tables, completions, strict=True)
        for completion in drawn
    ]
    count = len(scores)
    if count == 0 or len(qa_f1) != count:
        raise ValueError(f"{count} completions but {len(qa_f1)} QA-F1 scores")
    mean = mean_scores(scores)
    if mean is None:
        raise ValueError("no completion could be scored with TEDS")
    return SplitScores(
        teds=mean.teds,
        teds_s=mean.teds_structure,
        teds_normalised=mean.teds_norm,
        teds_s_normalised=mean.teds_structure_norm,
        qa_f1=sum(qa_f1) / count,
        completions=count,
    )


def qa_f1_scores(
    reward_url: str, tables: Sequence[DemoTable], completions: Sequence[Sequence[str]]
) -> list[float]:
    """QA-F1 of every completion from the reward service, by the trainer's own reward function.

    Raises ``RuntimeError`` when any completion could not be scored.
    """
    from trivia.trainer.options import PluginOptions
    from trivia.trainer.rewards import QAF1Reward

    flat = [c for drawn in completions for c in drawn]
    pairs = [t.qa_pairs for t, drawn in zip(tables, completions, strict=True) for _ in drawn]
    reward = QAF1Reward(options=PluginOptions(reward_url=reward_url))
    scores = asyncio.run(reward(flat, qa_pairs=pairs))
    missing = sum(score is None for score in scores)
    if missing:
        raise RuntimeError(f"reward service at {reward_url}: {missing} completions unscored")
    return [float(score) for score in scores if score is not None]


def generate_completions(
    model_dir: Path,
    prompt: str,
    tables: Sequence[DemoTable],
    decoding: Decoding,
    processor_dir: Path | None = None,
) -> list[list[str]]:
    """``decoding.samples`` completions per table from the model in ``model_dir``.

    The processor comes from ``processor_dir`` (default: ``model_dir``), so a trained
    checkpoint is read exactly as the model it started from.
    """
    import torch
    from PIL import Image
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration
    from transformers.utils import logging as transformers_logging

    from trivia.trainer.tiny_model import chat_head

    transformers_logging.disable_progress_bar()  # the demo reports its own progress
    torch.manual_seed(decoding.seed)
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32)
    model.eval()
    processor = AutoProcessor.from_pretrained(processor_dir or model_dir)
    processor.tokenizer.padding_side = "left"
    images = [Image.open(table.image).convert("RGB") for table in tables]
    inputs = processor(
        text=[chat_head(prompt)] * len(tables), images=images, return_tensors="pt", padding=True
    )
    sampled = decoding.temperature > 0
    options = {"do_sample": sampled, "num_return_sequences": decoding.samples}
    if sampled:
        options |= {"temperature": decoding.temperature, "top_k": decoding.top_k}
        options |= {"top_p": decoding.top_p}
    else:
        options |= {"temperature": None, "top_k": None, "top_p": None}
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=decoding.max_new_tokens, **options)
    texts = processor.tokenizer.batch_decode(
        output[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True
    )
    n = decoding.samples
    return [texts[i * n : (i + 1) * n] for i in range(len(tables))]
