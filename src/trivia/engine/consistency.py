"""Response consistency: how much K recognitions of one image agree (pure).

The paper's signal for an informative image: the model recognises it K times at temperature > 0
and the consistency is the mean TEDS over the K·(K-1)/2 pairs. What an output that is not a
usable table counts for is a rule (`InvalidRule`):
- "zero" (the default): TEDS 0 against everything, so a model that often breaks off scores low;
  one truncated sample of K=4 caps the score at 0.5, which drops long tables below the 0.4 floor;
- "exclude": the mean over the pairs of valid outputs only (0 when fewer than two are valid).
The sampling sanity report shows how many images the rule moves across the floor.

An output is valid when it is complete (`is_complete`: OTSL ends with `<nl>`, HTML with
`</table>`) and holds at least one cell once converted to HTML; a table beyond TEDS's size
limits (`TableTooLarge`) is invalid too, with the limit it broke as the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Literal

from trivia.metrics import TableTooLarge, pairwise_teds, teds
from trivia.tables import html_to_table, is_complete, to_html

InvalidRule = Literal["zero", "exclude"]
INVALID_RULES: tuple[InvalidRule, ...] = ("zero", "exclude")


@dataclass(frozen=True, slots=True)
class Check:
    """Whether one output is a usable table, why not, and its HTML (for TEDS)."""

    valid: bool
    reason: str | None  # "empty", "truncated", "incomplete", "no_table", "too_large: …"
    html: str


@dataclass(frozen=True, slots=True)
class Consistency:
    """The agreement of K outputs of one image."""

    checks: tuple[Check, ...]
    teds: tuple[tuple[float, ...], ...]  # K×K; 0 wherever either output is invalid
    score: float  # mean TEDS over all pairs
    consensus: int | None  # the valid output with the highest mean TEDS to the others

    @property
    def n_valid(self) -> int:
        return sum(check.valid for check in self.checks)


def check_output(text: str, finish_reason: str | None = None) -> Check:
    """Validity of one model output; `finish_reason` "length" (cut at max_tokens) is always
    truncation, an incomplete table without it is "incomplete"."""
    if not text.strip():
        return Check(False, "empty", "")
    if finish_reason == "length":  # cut at max_tokens, even where the cut falls on a row end
        return Check(False, "truncated", "")
    if not is_complete(text):
        return Check(False, "truncated" if finish_reason == "length" else "incomplete", "")
    html = to_html(text)
    table = html_to_table(html)
    if table is None or not table.cells:
        return Check(False, "no_table", html)
    return Check(True, None, html)


def pair_mean(
    matrix: Sequence[Sequence[float]], valid: Sequence[bool], rule: InvalidRule = "zero"
) -> float:
    """The consistency of a K×K TEDS matrix under `rule` (see the module docstring)."""
    k = len(matrix)
    if rule == "exclude":
        pairs = [matrix[i][j] for i, j in combinations(range(k), 2) if valid[i] and valid[j]]
        return sum(pairs) / len(pairs) if pairs else 0.0
    if rule != "zero":
        raise ValueError(f"unknown invalid-output rule {rule!r}; use 'zero' or 'exclude'")
    pairs = [matrix[i][j] if valid[i] and valid[j] else 0.0 for i, j in combinations(range(k), 2)]
    return sum(pairs) / len(pairs)


def consistency(
    texts: Sequence[str],
    finish_reasons: Sequence[str | None] | None = None,
    *,
    invalid: InvalidRule = "zero",
) -> Consistency:
    """Validity of each of K ≥ 2 outputs, their pairwise TEDS, the mean under the `invalid`
    rule, and the consensus."""
    if invalid not in INVALID_RULES:
        raise ValueError(f"unknown invalid-output rule {invalid!r}; use 'zero' or 'exclude'")
    k = len(texts)
    if k < 2:
        raise ValueError(f"consistency needs at least 2 outputs, got {k}")
    reasons = list(finish_reasons) if finish_reasons is not None else [None] * k
    if len(reasons) != k:
        raise ValueError("finish_reasons must match texts one to one")
    checks = [check_output(text, reason) for text, reason in zip(texts, reasons, strict=True)]
    matrix = [[0.0] * k for _ in range(k)]
    while True:
        valid = [i for i, check in enumerate(checks) if check.valid]
        try:
            scores = pairwise_teds([checks[i].html for i in valid])
        except TableTooLarge:
            rechecked = [_size_checked(check) for check in checks]
            if rechecked == checks:
                raise  # no single table is too large: nothing to leave out
            checks = rechecked
            continue
        break
    for a, b in combinations(range(len(valid)), 2):
        matrix[valid[a]][valid[b]] = matrix[valid[b]][valid[a]] = scores[a][b]
    for i in valid:
        matrix[i][i] = 1.0
    consensus = None
    if valid:
        consensus = max(valid, key=lambda i: (sum(matrix[i]) - matrix[i][i], -i))
    return Consistency(
        checks=tuple(checks),
        teds=tuple(tuple(row) for row in matrix),
        score=pair_mean(matrix, [check.valid for check in checks], invalid),
        consensus=consensus,
    )


def _size_checked(check: Check) -> Check:
    """`check`, made invalid if its table alone breaks the TEDS size limits."""
    if not check.valid:
        return check
    try:
        teds(check.html, check.html)
    except TableTooLarge as exc:
        return Check(False, f"too_large: {exc}", check.html)
    return check
