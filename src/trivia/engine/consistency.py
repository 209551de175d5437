"""Response consistency: how much K recognitions of one image agree (pure).

The paper's signal for an informative image: the model recognises it K times at temperature > 0
and the consistency is the mean TEDS over the K·(K-1)/2 pairs. An output that is not a usable
table counts as TEDS 0 against everything, so a model that often breaks off scores low.

An output is valid when it is complete (`is_complete`: OTSL ends with `<nl>`, HTML with
`</table>`) and holds at least one cell once converted to HTML; a table beyond TEDS's size
limits (`TableTooLarge`) is invalid too, with the limit it broke as the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

from trivia.metrics import TableTooLarge, pairwise_teds, teds
from trivia.tables import html_to_table, is_complete, to_html

__all__ = ["Check", "Consistency", "check_output", "consistency"]


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
    """Validity of one model output; `finish_reason` "length" names a cut-off as truncation."""
    if not text.strip():
        return Check(False, "empty", "")
    if not is_complete(text):
        return Check(False, "truncated" if finish_reason == "length" else "incomplete", "")
    html = to_html(text)
    table = html_to_table(html)
    if table is None or not table.cells:
        return Check(False, "no_table", html)
    return Check(True, None, html)


def consistency(
    texts: Sequence[str], finish_reasons: Sequence[str | None] | None = None
) -> Consistency:
    """Validity of each of K ≥ 2 outputs, their pairwise TEDS, the mean, and the consensus."""
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
    pairs = [matrix[i][j] for i, j in combinations(range(k), 2)]
    consensus = None
    if valid:
        consensus = max(valid, key=lambda i: (sum(matrix[i]) - matrix[i][i], -i))
    return Consistency(
        checks=tuple(checks),
        teds=tuple(tuple(row) for row in matrix),
        score=sum(pairs) / len(pairs),
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
