"""Tiny models built locally: Qwen special tokens at Qwen's ids, loadable by transformers."""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="needs the train extra (torch, transformers)")

from trivia.trainer.tiny_model import (
    QWEN3_SPECIAL_TOKENS,
    build_tiny_qwen2_5_vl,
    build_tokenizer,
    warm_start,
)


def test_special_tokens_sit_at_qwen_ids():
    tokenizer = build_tokenizer(QWEN3_SPECIAL_TOKENS)
    ids = tokenizer.convert_tokens_to_ids(
        ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|image_pad|>", "<think>", "</think>"]
    )
    assert ids == [151643, 151644, 151645, 151655, 151667, 151668]
    assert tokenizer.eos_token_id == 151645


def test_otsl_round_trips_through_the_tokenizer():
    tokenizer = build_tokenizer()
    text = "<fcel>Age<fcel>0.716<nl>\n<ecel><lcel><nl>\n"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text
    assert tokenizer.convert_tokens_to_ids("<nl>") in ids  # one token per tag


def test_tiny_vl_loads_and_warm_start_lowers_the_loss(tmp_path):
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    model_dir = build_tiny_qwen2_5_vl(tmp_path / "vl")
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(model_dir)
    assert model.config.image_token_id == 151655
    assert sum(p.numel() for p in model.parameters()) < 25_000_000
    processor = AutoProcessor.from_pretrained(model_dir)
    assert processor.tokenizer.convert_tokens_to_ids("<|image_pad|>") == 151655
    targets = ["<fcel>a<fcel>b<nl>\n", "<fcel>c<nl>\n"]
    first = warm_start(model_dir, "Read the table.", targets, steps=1)
    last = warm_start(model_dir, "Read the table.", targets, steps=15)
    assert last < first
