"""The sampling fields every data-engine request carries, all of them, explicitly (pure).

vLLM's OpenAI server fills each field a request leaves out from the model's
`generation_config.json`; Qwen2.5-VL's sets `top_k` 1, `top_p` 0.001 and `repetition_penalty`
1.05, so a request that sends only `temperature` decodes greedily and K "samples" of an image come
out identical. Every request here therefore names every field, and the record of each result
stores the values used. The defaults are plain temperature sampling, as in the paper: no top-k,
top-p or min-p truncation and no repetition penalty; `GREEDY` is the same at temperature 0.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, replace
from typing import Any

from trivia.settings import ENGINE


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """What a chat request asks of the sampler; `seed` None leaves each call unseeded."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1  # -1: no top-k (vLLM's "disabled")
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    seed: int | None = None
    max_tokens: int = ENGINE.max_tokens

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")
        if self.top_k < -1 or self.top_k == 0:
            raise ValueError("top_k must be -1 (off) or at least 1")
        if not 0 <= self.min_p <= 1:
            raise ValueError("min_p must be in [0, 1]")
        if self.repetition_penalty <= 0:
            raise ValueError("repetition_penalty must be > 0")
        if self.max_tokens < 1:
            raise ValueError("max_tokens must be >= 1")

    def with_max_tokens(self, max_tokens: int) -> SamplingParams:
        return replace(self, max_tokens=max_tokens)

    def seed_for(self, *parts: object) -> int | None:
        """The seed of one call (e.g. an image and a sample's number), stable across runs."""
        if self.seed is None:
            return None
        text = ":".join(str(part) for part in (self.seed, *parts))
        return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) % 2**31

    def request_fields(self, *seed_parts: object) -> dict[str, Any]:
        """Every field as a chat request sends it; the seed derived from `seed_parts`."""
        fields: dict[str, Any] = {
            "temperature": float(self.temperature),
            "top_p": float(self.top_p),
            "top_k": self.top_k,
            "min_p": float(self.min_p),
            "repetition_penalty": float(self.repetition_penalty),
            "max_tokens": self.max_tokens,
        }
        seed = self.seed_for(*seed_parts)
        if seed is not None:
            fields["seed"] = seed
        return fields

    def as_record(self) -> dict[str, Any]:
        """The values as a result record stores them (and a resume key includes them)."""
        record = asdict(self)
        for name in ("temperature", "top_p", "min_p", "repetition_penalty"):
            record[name] = float(record[name])
        return record


#: Deterministic decoding with every field named (evaluation, the verifier).
GREEDY = SamplingParams(temperature=0.0)
