"""Filtering-based stabilisation: which completions are valid, and GRPO advantages over them.

A completion is invalid when the sampler cut it at the length limit (``finish_reason ==
"length"``, ms-swift's ``is_truncated``) or, for ``tag_tail``, when it does not end with the
tail of the table format its prompt asks for (OTSL ``<nl>\n``, HTML ``</table>``): a cut at a
row boundary ends with the tail, so the tail alone would pass it.

A completion that is truncated or malformed carries no usable signal about the table, so it is
taken out of its GRPO group before advantages are computed: the group's mean and standard
deviation come from its valid completions only, an invalid completion gets no gradient, and a
group with fewer than two valid completions (no contrast to learn from) contributes nothing.
Group sizes never change, because ms-swift reshapes rewards to ``(-1, num_generations)``;
invalid rows are masked instead of removed.

Pure functions over lists and numpy arrays; the trainer subclass wires them into ms-swift.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

Strategy = Literal["tag_tail", "prob", "tag_tail+prob"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)
OTSL_TAIL = "<nl>\n"
HTML_TAILS = ("</table>", "</html>")


def prompt_tails(prompt: str) -> tuple[str, ...]:
    """The tails a completion must end with, from the table format its prompt asks for.

    A prompt naming OTSL (or its ``<nl>`` tag) wants OTSL; one naming HTML wants HTML; a prompt
    naming neither accepts either format's tail.
    """
    lowered = prompt.lower()
    if "otsl" in lowered or "<nl>" in lowered:
        return (OTSL_TAIL,)
    if "html" in lowered or "<table" in lowered:
        return HTML_TAILS
    return (OTSL_TAIL, *HTML_TAILS)


def decode_tail(tail: str) -> str:
    r"""Turn escapes a shell leaves in a tail (``"<nl>\n"`` in double quotes) into characters."""
    return tail.replace("\\n", "\n").replace("\\t", "\t").replace("\\r", "\r")


@dataclass(frozen=True, slots=True)
class RejectionConfig:
    """How completions are judged valid.

    ``tag_tails``: a completion must end with one of these (OTSL ``"<nl>\n"``; HTML
    ``"</table>"`` or ``"</html>"``); None takes them from each prompt (`prompt_tails`).
    ``min_logprob``: for ``prob``, the least mean token log-probability under the sampler.
    ``oversample``: generate this many times ``num_generations`` per prompt and keep the first
    valid ones. A completion cut at the length limit is invalid whatever the strategy.
    """

    enabled: bool = True
    strategy: Strategy = "tag_tail"
    tag_tails: tuple[str, ...] | None = None
    min_logprob: float | None = None
    oversample: float = 1.0

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"rejection strategy must be in {STRATEGIES}, not {self.strategy!r}")
        tails = self.tag_tails  # () only from `text_checks` of ``prob``: no tail check
        if "tag_tail" in self.strategy and tails and not any(t.strip() for t in tails):
            raise ValueError("rejection strategy tag_tail needs at least one non-blank tag tail")
        if "prob" in self.strategy and self.min_logprob is None:
            raise ValueError("rejection strategy prob needs a minimum mean log-probability")
        if not self.oversample >= 1.0:
            raise ValueError(f"rejection oversample must be >= 1, not {self.oversample}")

    def text_checks(self) -> RejectionConfig:
        """The part of the filter that needs no log-probabilities (usable right after sampling).

        For ``prob`` alone that is the truncation check: an empty tail list passes every text.
        """
        tails = () if self.strategy == "prob" else self.tag_tails
        return RejectionConfig(enabled=self.enabled, strategy="tag_tail", tag_tails=tails)

    def describe(self) -> str:
        """The filter in words, for the log line at start."""
        if not self.enabled:
            return "filter OFF (TRIVIA_REJECTION_SAMPLE=false): every completion is trained on"
        if "tag_tail" not in self.strategy:
            tails = "no tail check"
        elif self.tag_tails is None:
            tails = "tail from each prompt's format (OTSL '<nl>\\n', HTML '</table>'/'</html>')"
        else:
            tails = "tails " + ", ".join(repr(t) for t in self.tag_tails)
        prob = f", mean log-probability >= {self.min_logprob}" if "prob" in self.strategy else ""
        return (
            f"filter ON ({self.strategy}): {tails}{prob}; completions cut at the length limit "
            f"are invalid; oversample x{self.oversample:g}"
        )


def ends_with_tail(text: str, tails: Sequence[str]) -> bool:
    """Whether ``text`` ends with one of ``tails``, ignoring trailing whitespace on both sides.

    Trailing whitespace carries no table content: ``"…<nl>"`` and ``"…<nl>\n"`` both end a
    complete OTSL table, ``"…</table>\n"`` a complete HTML one.
    """
    end = text.rstrip()
    return any(tail.strip() and end.endswith(tail.rstrip()) for tail in tails)


def is_valid(
    text: str,
    mean_logprob: float | None,
    config: RejectionConfig,
    *,
    truncated: bool = False,
    prompt: str = "",
) -> bool:
    """Whether one completion passes the filter (always true when the filter is off).

    ``truncated``: the sampler stopped it at the length limit. ``prompt``: the text of its
    prompt, which picks the tail when the config names none. A completion with no tokens
    (``mean_logprob`` None or NaN) fails the ``prob`` check.
    """
    if not config.enabled:
        return True
    if truncated:
        return False
    tails = config.tag_tails if config.tag_tails is not None else prompt_tails(prompt)
    if "tag_tail" in config.strategy and tails and not ends_with_tail(text, tails):
        return False
    if "prob" in config.strategy:
        assert config.min_logprob is not None
        if mean_logprob is None or math.isnan(mean_logprob):
            return False
        return mean_logprob >= config.min_logprob
    return True


def validity(
    texts: Sequence[str],
    mean_logprobs: Sequence[float | None] | None,
    config: RejectionConfig,
    *,
    truncated: Sequence[bool] | None = None,
    prompts: Sequence[str] | None = None,
) -> np.ndarray:
    """The validity of each completion as a boolean array."""
    n = len(texts)
    logprobs = mean_logprobs if mean_logprobs is not None else [None] * n
    cut = truncated if truncated is not None else [False] * n
    asked = prompts if prompts is not None else [""] * n
    if len(logprobs) != n:
        raise ValueError(f"{n} completions but {len(logprobs)} log-probabilities")
    if len(cut) != n or len(asked) != n:
        raise ValueError(f"{n} completions but {len(cut)} truncation flags, {len(asked)} prompts")
    return np.array(
        [
            is_valid(t, lp, config, truncated=c, prompt=p)
            for t, lp, c, p in zip(texts, logprobs, cut, asked, strict=True)
        ],
        bool,
    )


@dataclass(frozen=True, slots=True)
class GroupAdvantages:
    """Advantages and the rows that are trained on.

    ``mask[i]`` is false for a completion that gets no gradient (invalid, failed, or in a group
    with fewer than two usable completions); its advantage is 0.
    """

    advantages: np.ndarray
    mask: np.ndarray
    groups: int
    groups_skipped: int


def masked_group_advantages(
    rewards: Sequence[float] | np.ndarray,
    keep: Sequence[bool] | np.ndarray,
    num_generations: int,
    *,
    estimator: Literal["grpo", "rloo"] = "grpo",
    scale: Literal["group", "batch", "none"] = "group",
    eps: float = 1e-4,
) -> GroupAdvantages:
    """GRPO advantages with each group's statistics taken over its kept completions only.

    With every completion kept this equals ms-swift's own computation: ``r - mean`` (or the
    RLOO form), divided by the unbiased standard deviation plus ``eps`` for ``group`` or
    ``batch`` scaling. Rewards of rows that are not kept are ignored (they may be NaN).
    """
    values = np.asarray(rewards, dtype=np.float64)
    kept = np.asarray(keep, dtype=bool)
    if values.ndim != 1 or values.shape != kept.shape:
        raise ValueError(f"rewards {values.shape} and keep {kept.shape} must be equal 1-d shapes")
    if num_generations < 1 or values.size % num_generations:
        raise ValueError(f"{values.size} completions do not split into groups of {num_generations}")
    grouped = values.reshape(-1, num_generations)
    kept_grouped = kept.reshape(-1, num_generations)
    counts = kept_grouped.sum(axis=1)
    trained = kept_grouped & (counts >= 2)[:, None]

    safe = np.where(trained, grouped, 0.0)
    n = np.maximum(counts, 1)[:, None]
    mean = safe.sum(axis=1, keepdims=True) / n
    if estimator == "rloo":
        k = np.maximum(counts, 2)[:, None]
        centred = (safe - mean) * k / (k - 1)
    elif estimator == "grpo":
        centred = safe - mean
    else:
        raise ValueError(f"unknown advantage estimator {estimator!r}")

    if scale == "group":
        squares = np.where(trained, (safe - mean) ** 2, 0.0).sum(axis=1, keepdims=True)
        std = np.sqrt(squares / np.maximum(counts - 1, 1)[:, None])
        centred = centred / (std + eps)
    elif scale == "batch":
        chosen = values[trained.reshape(-1)]
        std = float(chosen.std(ddof=1)) if chosen.size > 1 else 0.0
        centred = centred / (std + eps)
    elif scale != "none":
        raise ValueError(f"unknown reward scaling {scale!r}")

    advantages = np.where(trained, centred, 0.0).reshape(-1)
    return GroupAdvantages(
        advantages=advantages,
        mask=trained.reshape(-1),
        groups=grouped.shape[0],
        groups_skipped=int((counts < 2).sum()),
    )


@dataclass(frozen=True, slots=True)
class FilterStats:
    """What the filter did in one step, for the ``rejection_sampling/*`` metrics."""

    completions: int
    valid: int
    groups: int
    groups_skipped: int
    # Of the invalid ones, how many the sampler cut at the length limit (the rest: malformed).
    truncated: int = 0

    @property
    def malformed(self) -> int:
        return self.completions - self.valid - self.truncated

    @property
    def valid_rate(self) -> float:
        return self.valid / self.completions if self.completions else 0.0

    @property
    def rejection_rate(self) -> float:
        return 1.0 - self.valid_rate if self.completions else 0.0


def oversampled_size(num_generations: int, factor: float) -> int:
    """How many completions to generate per prompt to keep ``num_generations`` of them."""
    if factor < 1.0:
        raise ValueError(f"oversample factor must be >= 1, not {factor}")
    return max(num_generations, math.ceil(num_generations * factor - 1e-9))


def select_first_valid(valid: Sequence[bool], generated: int, keep: int) -> list[int]:
    """Indices to keep, ``keep`` per group of ``generated``: the first valid ones, in order.

    A group with fewer than ``keep`` valid completions is topped up with its first invalid ones
    (which the filter then masks), so every group keeps exactly ``keep`` rows.
    """
    if not 0 < keep <= generated:
        raise ValueError(f"cannot keep {keep} of {generated} completions per group")
    if len(valid) % generated:
        raise ValueError(f"{len(valid)} completions do not split into groups of {generated}")
    chosen: list[int] = []
    for start in range(0, len(valid), generated):
        group = range(start, start + generated)
        good = [i for i in group if valid[i]][:keep]
        bad = [i for i in group if not valid[i]][: keep - len(good)]
        chosen.extend(sorted(good + bad))
    return chosen
