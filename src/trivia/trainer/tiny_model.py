"""Tiny randomly initialised models built locally, for the demo and the tests (no model hub).

``build_tiny_qwen2_5_vl`` writes a Qwen2.5-VL checkpoint (2 text layers of width 64, a 2-layer
vision tower; about 10M parameters, nearly all of them the 151,936-row embedding) with its
processor; ``build_tiny_qwen3`` a Qwen3 causal LM that ``swift deploy`` serves on CPU. Both
share a byte-level BPE tokenizer trained here on a little table text, whose special tokens sit at
the ids the real Qwen tokenizers use: ms-swift's templates hard-code some of them (the image
placeholder ``<|image_pad|>`` is 151655), so the ids must match even though the vocabulary is
otherwise tiny. Ids between the learned vocabulary and the special tokens are unused fillers.

Needs the ``train`` extra (torch, transformers, tokenizers).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

FIRST_SPECIAL_ID = 151643
IMAGE_PAD_ID = 151655  # <|image_pad|>
VOCAB_SIZE = 151936
# Qwen2 / Qwen2.5-VL special tokens, in id order from 151643.
QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<tool_call>",
    "</tool_call>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
)
# Qwen3 continues the list: <think> is 151667, </think> 151668.
QWEN3_SPECIAL_TOKENS = (
    *QWEN_SPECIAL_TOKENS,
    "<tool_response>",
    "</tool_response>",
    "<think>",
    "</think>",
)
OTSL_TOKENS = ("<fcel>", "<ecel>", "<lcel>", "<ucel>", "<xcel>", "<nl>")
# Tokens a real multi-purpose tokenizer marks as special (never split, skipped when decoding).
_SKIPPED = {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
            "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"}  # fmt: skip

_CORPUS = (
    "<fcel>Variable<fcel>Hazard ratio<fcel>95 % CI<fcel>p value<nl>\n",
    "<fcel>Age<ecel><ecel><fcel>0.716<nl>\n<fcel>Male<fcel>1.000<lcel><ucel><xcel><nl>\n",
    "<table><thead><tr><td>Name</td><td>Value</td></tr></thead>"
    "<tbody><tr><td>a</td><td>1</td></tr></tbody></table>",
    "You are an AI specialized in recognizing and extracting table from the image. "
    "Your mission is to analyze the table in the image and generate the result in OTSL format.",
    "Table: Question: What is the value in row, column? Answer the question from the table.",
    "0123456789 .,;:%+-()[]{}/\\|<>=?!'\"#*&^$@~_` abcdefghijklmnopqrstuvwxyz",
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ total mean median n (%) mg/kg yes no",
)

_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _train_bpe(corpus: Iterable[str], vocab_size: int) -> tuple[dict[str, int], list[str]]:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(corpus), trainer=trainer)
    saved = json.loads(tok.to_str())
    merges = [m if isinstance(m, str) else " ".join(m) for m in saved["model"]["merges"]]
    return saved["model"]["vocab"], merges


def build_tokenizer(special_tokens: tuple[str, ...] = QWEN_SPECIAL_TOKENS, learned: int = 600):
    """A fast byte-level BPE tokenizer with Qwen's special tokens at Qwen's ids."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab, merges = _train_bpe(_CORPUS * 4, learned)
    for filler in range(len(vocab), FIRST_SPECIAL_ID):
        vocab[f"<|unused_{filler}|>"] = filler
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[tuple(m.split(" ")) for m in merges]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.add_special_tokens(
        [AddedToken(t, special=t in _SKIPPED, normalized=False) for t in special_tokens]
    )
    for index, token in enumerate(special_tokens):
        assert tok.token_to_id(token) == FIRST_SPECIAL_ID + index, token
    # OTSL tags as single tokens (after the special ones), as a table-trained tokenizer has them.
    tok.add_tokens([AddedToken(t, normalized=False) for t in OTSL_TOKENS])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        model_max_length=32768,
        chat_template=_CHAT_TEMPLATE,
        clean_up_tokenization_spaces=False,
    )


def _seed(seed: int) -> None:
    import torch

    torch.manual_seed(seed)


def build_tiny_qwen2_5_vl(output: Path, *, seed: int = 0) -> Path:
    """Write a tiny random Qwen2.5-VL with its processor to ``output``; return ``output``."""
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    _seed(seed)
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": VOCAB_SIZE,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
            "max_window_layers": 2,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 1000000.0,
                "mrope_section": [2, 3, 3],
            },
            "bos_token_id": FIRST_SPECIAL_ID,
            "eos_token_id": FIRST_SPECIAL_ID + 2,
            "pad_token_id": FIRST_SPECIAL_ID,
        },
        vision_config={
            "depth": 2,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_heads": 4,
            "out_hidden_size": 64,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 112,
            "fullatt_block_indexes": [1],
        },
    )
    model = Qwen2_5_VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = [FIRST_SPECIAL_ID + 2, FIRST_SPECIAL_ID]
    model.generation_config.pad_token_id = FIRST_SPECIAL_ID
    model.save_pretrained(output)
    processor = Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(min_pixels=28 * 28, max_pixels=112 * 112),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(),
        chat_template=_CHAT_TEMPLATE,
    )
    processor.save_pretrained(output)
    return output


def build_tiny_qwen3(output: Path, *, seed: int = 0) -> Path:
    """Write a tiny random Qwen3 causal LM with its tokenizer to ``output``; return ``output``."""
    from transformers import Qwen3Config, Qwen3ForCausalLM

    _seed(seed)
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(QWEN3_SPECIAL_TOKENS)
    config = Qwen3Config(
        vocab_size=VOCAB_SIZE,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=4096,
        bos_token_id=FIRST_SPECIAL_ID,
        eos_token_id=FIRST_SPECIAL_ID + 2,
        pad_token_id=FIRST_SPECIAL_ID,
        tie_word_embeddings=True,
    )
    model = Qwen3ForCausalLM(config)
    model.generation_config.eos_token_id = [FIRST_SPECIAL_ID + 2, FIRST_SPECIAL_ID]
    model.generation_config.pad_token_id = FIRST_SPECIAL_ID
    model.save_pretrained(output)
    tokenizer.save_pretrained(output)
    return output


def chat_head(prompt: str) -> str:
    """The prompt as ms-swift's ``qwen2_5_vl`` template renders it, up to the answer."""
    vision = "<|vision_start|><|image_pad|><|vision_end|>"
    return (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        f"<|im_start|>user\n{prompt.replace('<image>', vision)}<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def warm_start(
    model_dir: Path,
    prompt: str,
    targets: list[str],
    *,
    images: list[Path] | None = None,
    steps: int = 60,
    lr: float = 1e-2,
    seed: int = 0,
) -> float:
    """Teach a tiny model its answers: ``targets`` after ``prompt``, then ``<|im_end|>``.

    A random model almost never ends a completion with a row terminator, so every completion
    would be filtered out and GRPO would have nothing to train on. A few steps of plain
    next-token training give it the habit. With ``images`` (one per target, shown where the
    prompt has ``<image>``, as in the training rows) it learns to read each image's table, so
    that sampling later gives partly right tables whose rewards differ; without, the prompt is
    text only. Overwrites the checkpoint; returns the last loss.
    """
    import torch
    from PIL import Image
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    _seed(seed)
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32)
    processor = AutoProcessor.from_pretrained(model_dir)
    head = chat_head(prompt)
    examples = []  # (input ids, labels, image inputs or None)
    for index, target in enumerate(targets):
        if images is None:
            pixels = None
            head_ids = processor.tokenizer(head, add_special_tokens=False)["input_ids"]
        else:
            image = Image.open(images[index]).convert("RGB")
            inputs = processor(text=[head], images=[image], return_tensors="pt")
            head_ids = inputs["input_ids"][0].tolist()
            pixels = (inputs["pixel_values"], inputs["image_grid_thw"])
        ids = processor.tokenizer(target + "<|im_end|>", add_special_tokens=False)["input_ids"]
        examples.append((head_ids + ids, [-100] * len(head_ids) + ids, pixels))
    # The 151,936-row input embedding stays as it is: updating it is most of the cost.
    model.get_input_embeddings().weight.requires_grad_(False)
    trained = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=lr)
    # Decaying to zero sharpens the learned answers, so sampling keeps more of them intact.
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / steps)
    model.train()
    loss = torch.tensor(0.0)
    for step in range(steps):
        batch = [examples[(step * 4 + k) % len(examples)] for k in range(4)]
        width = max(len(ids) for ids, _, _ in batch)
        input_ids = torch.tensor(
            [ids + [FIRST_SPECIAL_ID] * (width - len(ids)) for ids, _, _ in batch]
        )
        labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab, _ in batch])
        lengths = torch.tensor([len(ids) for ids, _, _ in batch])
        attention = torch.arange(width)[None, :] < lengths[:, None]
        extra = {}
        if images is not None:
            extra["pixel_values"] = torch.cat([pixels[0] for _, _, pixels in batch])
            extra["image_grid_thw"] = torch.cat([pixels[1] for _, _, pixels in batch])
            # Marks the image tokens, so that they get the 2-D positions they get when sampling.
            extra["mm_token_type_ids"] = (input_ids == IMAGE_PAD_ID).long()
        hidden = model.model(
            input_ids=input_ids, attention_mask=attention.long(), **extra
        ).last_hidden_state
        # Logits only where there is a label: the 151,936-wide head is the expensive part.
        wanted = labels[:, 1:] != -100
        logits = model.lm_head(hidden[:, :-1][wanted])
        loss = torch.nn.functional.cross_entropy(logits, labels[:, 1:][wanted])
        loss.backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
    model.save_pretrained(model_dir)
    return float(loss.detach())
