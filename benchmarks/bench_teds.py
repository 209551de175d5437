"""TEDS: the project's implementation against the APTED baseline, in the same process and run.

The baseline is PubTabNet's reference definition on APTED with C Levenshtein (the tests' oracle,
`tests/metrics/teds_oracle.py`). Tables are generated (`tests/metrics/teds_tables.py`): results
tables with spans and inline tags, recognised with typical errors; plus the PubTabNet samples
shipped in `examples/pubtabnet/`, and `pairwise_teds` over 8 recognitions of one table. The
baseline runs once per pair (it takes seconds; for the pairwise line, on a sample of the pairs);
the project's time is the median of repeats; peak memory is what tracemalloc sees over one call
(numpy's arrays included).
"""

from __future__ import annotations

import json
import random
import statistics
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

from rich.console import Console
from rich.table import Table as RichTable
from tests.metrics.teds_oracle import reference_teds
from tests.metrics.teds_tables import realistic_table, recognise, render

from trivia.metrics import pairwise_teds, teds

SAMPLES = Path(__file__).resolve().parents[1] / "examples" / "pubtabnet"
# (label, rows, columns, pairs): about 100, 250, 600 and 1,200 cells.
SIZES = (("~100 cells", 10, 10, 4), ("~250 cells", 25, 10, 3), ("~600 cells", 50, 12, 1),
         ("~1,200 cells", 100, 12, 1))  # fmt: skip
PAIRWISE_K = 8
PAIRWISE_SHAPE = (40, 10)  # 400 cells
PAIRWISE_BASELINE_PAIRS = 4


@dataclass(frozen=True)
class Result:
    """One line of the report: times are per pair (per matrix for the pairwise line)."""

    case: str
    cells: str
    baseline_s: float
    ours_s: float
    max_delta: float
    peak_mib: float
    estimated: bool = False


def main() -> None:
    console = Console(width=max(Console().width, 120))
    started = time.perf_counter()
    first_call = _first_call_seconds()
    results = [_sized(label, rows, cols, pairs) for label, rows, cols, pairs in SIZES]
    samples, published_delta, published_equal = _samples()
    results += [samples, _pairwise()]
    console.print(_report(results))
    console.print(
        f"First call in this process (numba cache load or compile included): {first_call:.2f} s. "
        f"PubTabNet samples against their published scores: max |Δ| {published_delta:.1e}, "
        f"equal to the last bit: {published_equal[0]} of {published_equal[1]}. "
        f"Whole benchmark: {time.perf_counter() - started:.0f} s."
    )


def _first_call_seconds() -> float:
    gt = render(realistic_table(random.Random(0), 3, 3))
    start = time.perf_counter()
    teds(gt.replace("</td>", "x</td>", 1), gt)
    return time.perf_counter() - start


def _sized(label: str, rows: int, cols: int, pairs: int) -> Result:
    rng = random.Random(rows * 1000 + cols)
    cases = []
    for _ in range(pairs):
        truth = realistic_table(rng, rows, cols)
        cases.append((render(recognise(rng, truth, errors=rng.randint(3, 6))), render(truth)))
    return _measure(label, f"{rows * cols:,}", cases)


def _samples() -> tuple[Result, float, tuple[int, int]]:
    preds = json.loads((SAMPLES / "sample_pred.json").read_text())
    truths = json.loads((SAMPLES / "sample_gt.json").read_text())
    expected = json.loads((SAMPLES / "sample_expected_teds.json").read_text())
    cases = [(preds.get(name, ""), truths[name]["html"]) for name in expected]
    pairs = [(teds(p, g), expected[name]) for name, (p, g) in zip(expected, cases, strict=True)]
    published = max(abs(score - value) for score, value in pairs)
    equal = sum(score == value for score, value in pairs)
    cells = statistics.median(g.count("<td") for _, g in cases)
    result = _measure(f"PubTabNet samples ({len(cases)})", f"median {cells:.0f}", cases)
    return result, published, (equal, len(cases))


def _measure(label: str, cells: str, cases: list[tuple[str, str]]) -> Result:
    baseline, ours, deltas = [], [], []
    for pred, gt in cases:
        start = time.perf_counter()
        expected = reference_teds(pred, gt)
        baseline.append(time.perf_counter() - start)
        ours.append(_median_seconds(lambda p=pred, g=gt: teds(p, g)))
        deltas.append(abs(teds(pred, gt) - expected))
    peak = max(_peak_mib(lambda p=pred, g=gt: teds(p, g)) for pred, gt in cases)
    return Result(label, cells, statistics.mean(baseline), statistics.mean(ours), max(deltas), peak)


def _pairwise() -> Result:
    """`pairwise_teds` over K recognitions; the baseline is APTED on a sample of the pairs,
    scaled to all of them (all 28 would take minutes)."""
    rng = random.Random(PAIRWISE_K)
    truth = realistic_table(rng, *PAIRWISE_SHAPE)
    tables = [render(recognise(rng, truth, errors=rng.randint(0, 4))) for _ in range(PAIRWISE_K)]
    pairs = list(combinations(range(PAIRWISE_K), 2))
    sample = rng.sample(pairs, PAIRWISE_BASELINE_PAIRS)
    start = time.perf_counter()
    expected = {(i, j): reference_teds(tables[i], tables[j]) for i, j in sample}
    baseline = (time.perf_counter() - start) * len(pairs) / len(sample)
    matrix = pairwise_teds(tables)
    delta = max(abs(matrix[i][j] - value) for (i, j), value in expected.items())
    return Result(
        f"pairwise_teds, K={PAIRWISE_K} ({len(pairs)} pairs)",
        f"{PAIRWISE_SHAPE[0] * PAIRWISE_SHAPE[1]:,}",
        baseline,
        _median_seconds(lambda: pairwise_teds(tables)),
        delta,
        _peak_mib(lambda: pairwise_teds(tables)),
        estimated=True,
    )


def _median_seconds(call: Callable[[], object], *, budget_s: float = 0.5) -> float:
    times: list[float] = []
    while len(times) < 3 or (sum(times) < budget_s and len(times) < 25):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _peak_mib(call: Callable[[], object]) -> float:
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def _report(results: list[Result]) -> RichTable:
    table = RichTable(
        title="TEDS: APTED baseline vs trivia.metrics.teds, seconds per pair (per matrix for K)",
        caption="≈: APTED timed on a sample of the pairs and scaled; "
        "trivia: median of repeats; peak memory: tracemalloc over one call",
    )
    for column in ("case", "cells", "baseline (APTED)", "trivia", "speed-up", "max |Δ|"):
        table.add_column(column, justify="left" if column == "case" else "right")
    table.add_column("trivia peak memory", justify="right")
    for r in results:
        table.add_row(
            r.case,
            r.cells,
            f"{'≈ ' if r.estimated else ''}{r.baseline_s:.3f} s",
            f"{r.ours_s * 1000:.2f} ms",
            f"{r.baseline_s / r.ours_s:,.0f}×",
            f"{r.max_delta:.1e}",
            f"{r.peak_mib:.1f} MiB",
        )
    return table
