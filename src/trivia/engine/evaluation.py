"""`trivia eval`: a model's tables against the ground truth, by TEDS and TEDS-S.

Predictions come from the model (`trivia.engine.prediction`: one greedy recognition per table,
resumable) or from a `{name: html}` file. Scores (`score_predictions`):

- raw: PubTabNet's TEDS of the prediction (`to_html`: OTSL converted, HTML cut to its first
  table, which scores exactly as the whole document does) against the ground truth as given;
  this reproduces the official sample scores;
- normalised (`normalize`): both sides through `normalize_html` first (th→td, row groups
  unwrapped, inline markup such as sup/sub/span and b/i/strong/em/u removed, NFKC, whitespace):
  a markup normalisation in the spirit of OmniDocBench's, which keeps b/i/strong/em/u;
- TEDS-S of each: structure only.

A table whose prediction is missing or empty scores 0 (PubTabNet's rule), and so does a
prediction beyond TEDS's size limits (a runaway output is the model's failure, not a reason to
leave the table out). Only a ground truth beyond the limits is excluded from the means, and
reported. Pairs are scored in worker processes (TEDS is CPU-bound) and cached by content.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from trivia.engine.consistency import check_output
from trivia.engine.labelled import LabelledTable
from trivia.engine.prediction import Prediction
from trivia.engine.selection import histogram
from trivia.engine.store import ResultStore, work_key
from trivia.metrics import TableTooLarge, teds
from trivia.tables import normalize_html, to_html

#: Changes whenever a score for the same pair could change: old cache entries are not reused.
SCORER_VERSION = 2
METRICS = ("teds", "teds_s", "teds_norm", "teds_s_norm")


@dataclass(frozen=True, slots=True)
class TableScore:
    """One table's scores (None where not computed) and what the prediction was."""

    name: str
    image: Path | None
    teds: float | None
    teds_s: float | None
    teds_norm: float | None
    teds_s_norm: float | None
    excluded: bool  # the ground truth is beyond TEDS's limits: left out of the means
    valid: bool  # complete and holding a table (`check_output`)
    reason: str | None  # why not valid
    seconds: float | None
    error: str | None
    prediction: str
    truth: str

    def metric(self, name: str) -> float | None:
        return getattr(self, name)


def score_table(prediction: str, truth: str, *, normalize: bool = True) -> dict[str, float | None]:
    """TEDS and TEDS-S of `prediction` (OTSL or HTML) against `truth` (HTML), raw and normalised.

    The normalised scores are None when `normalize` is false. An empty prediction scores 0 (as
    in PubTabNet's scorer; converting it would give an empty table, which TEDS scores above 0).
    Raises `TableTooLarge`.
    """
    if not prediction.strip():
        zero = 0.0 if normalize else None
        return {"teds": 0.0, "teds_s": 0.0, "teds_norm": zero, "teds_s_norm": zero}
    pred_html = to_html(prediction)
    scores: dict[str, float | None] = {
        "teds": teds(pred_html, truth),
        "teds_s": teds(pred_html, truth, structure_only=True),
        "teds_norm": None,
        "teds_s_norm": None,
    }
    if normalize:
        pred_norm, truth_norm = normalize_html(pred_html), normalize_html(truth)
        scores["teds_norm"] = teds(pred_norm, truth_norm)
        scores["teds_s_norm"] = teds(pred_norm, truth_norm, structure_only=True)
    return scores


def score_pair(prediction: str, truth: str, normalize: bool) -> dict[str, Any]:
    """The scores of one pair, or why it has none: the ground truth is too large (excluded),
    or the prediction is (it scores 0)."""
    try:
        return {"scores": score_table(prediction, truth, normalize=normalize), "error": None}
    except TableTooLarge as exc:
        try:
            teds(truth, truth)
        except TableTooLarge as truth_error:
            return {
                "scores": dict.fromkeys(METRICS),
                "error": f"ground truth too large, excluded: {truth_error}",
                "excluded": True,
            }
        zero = 0.0 if normalize else None
        scores = {"teds": 0.0, "teds_s": 0.0, "teds_norm": zero, "teds_s_norm": zero}
        return {"scores": scores, "error": f"prediction too large, scored 0: {exc}"}


def _score_job(job: tuple[str, str, bool]) -> dict[str, Any]:
    return score_pair(*job)


def score_predictions(
    tables: Sequence[LabelledTable],
    predictions: Mapping[str, Prediction | str],
    *,
    normalize: bool = True,
    processes: int = 1,
    cache: ResultStore | None = None,
    on_scored: Callable[[int], None] | None = None,
) -> list[TableScore]:
    """A `TableScore` per labelled table, in order; a table with no prediction scores 0.

    `processes` > 1 scores in that many worker processes; `cache` keeps each pair's scores by
    content (prediction, ground truth, normalisation, scorer version); `on_scored(n)` is told
    as n more pairs are done.
    """
    given = [predictions.get(table.name) for table in tables]
    preds = [p if isinstance(p, Prediction) else Prediction(p or "") for p in given]
    keys = [
        work_key("teds", SCORER_VERSION, normalize, pred.text, table.html)
        for pred, table in zip(preds, tables, strict=True)
    ]
    results: dict[int, dict[str, Any]] = {}
    todo: list[int] = []
    for index, key in enumerate(keys):
        hit = cache.get(key) if cache is not None else None
        if hit is not None:
            results[index] = hit
        else:
            todo.append(index)
    if results and on_scored is not None:
        on_scored(len(results))
    jobs = [(preds[i].text, tables[i].html, normalize) for i in todo]
    if processes > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(processes, mp_context=get_context("spawn")) as pool:
            scored = pool.map(_score_job, jobs, chunksize=max(1, len(jobs) // (processes * 8)))
            _collect(scored, todo, keys, results, cache, on_scored)
    else:
        _collect(map(_score_job, jobs), todo, keys, results, cache, on_scored)
    out = []
    for index, table in enumerate(tables):
        pred, result = preds[index], results[index]
        check = check_output(pred.text, pred.finish_reason)
        error = result.get("error")
        if given[index] is None:
            error = "no prediction"
        out.append(
            TableScore(
                name=table.name,
                image=table.image,
                excluded=bool(result.get("excluded")),
                valid=check.valid,
                reason=check.reason,
                seconds=pred.seconds,
                error=error,
                prediction=pred.text,
                truth=table.html,
                **result["scores"],
            )
        )
    return out


def _collect(
    scored: Iterable[dict[str, Any]],
    todo: Sequence[int],
    keys: Sequence[str],
    results: dict[int, dict[str, Any]],
    cache: ResultStore | None,
    on_scored: Callable[[int], None] | None,
) -> None:
    for index, result in zip(todo, scored, strict=True):
        results[index] = result
        if cache is not None:
            cache.write({"key": keys[index], **result})
        if on_scored is not None:
            on_scored(1)


def default_processes() -> int:
    """Worker processes for scoring: the CPUs this process may use."""
    return max(1, len(os.sched_getaffinity(0)))


@dataclass(frozen=True, slots=True)
class EvalSummary:
    """Overall means (None when nothing was scored), counts, and the tables to look at."""

    tables: int
    scored: int
    valid: int
    means: dict[str, float | None]
    worst: list[TableScore]  # lowest raw TEDS first
    slowest: list[TableScore]  # longest model call first (empty for predictions from a file)
    excluded: list[str]  # tables whose ground truth is beyond TEDS's limits
    histogram: list[int]  # raw TEDS of the scored tables in ten bins over [0, 1]

    def as_dict(self) -> dict[str, Any]:
        def brief(score: TableScore) -> dict[str, Any]:
            return {"name": score.name, "seconds": score.seconds} | {
                m: score.metric(m) for m in METRICS
            }

        return {
            "tables": self.tables,
            "scored": self.scored,
            "valid": self.valid,
            "means": self.means,
            "worst": [brief(s) for s in self.worst],
            "slowest": [brief(s) for s in self.slowest],
            "excluded": self.excluded,
            "teds_histogram": self.histogram,
        }


def summarise(scores: Sequence[TableScore], *, top: int = 10) -> EvalSummary:
    """Means over the scored tables (all but excluded ones), and the `top` worst and slowest."""
    scored = [s for s in scores if not s.excluded and s.teds is not None]
    means: dict[str, float | None] = {}
    for name in METRICS:
        values = [v for s in scored if (v := s.metric(name)) is not None]
        means[name] = sum(values) / len(values) if values else None
    worst = sorted(scored, key=lambda s: (s.teds, s.name))[:top]
    timed = [s for s in scores if s.seconds is not None]
    slowest = sorted(timed, key=lambda s: (-(s.seconds or 0.0), s.name))[:top]
    return EvalSummary(
        tables=len(scores),
        scored=len(scored),
        valid=sum(s.valid for s in scores),
        means=means,
        worst=worst,
        slowest=slowest,
        excluded=[s.name for s in scores if s.excluded],
        histogram=histogram([s.teds for s in scored if s.teds is not None], bins=10),
    )


def load_predictions(path: Path) -> dict[str, Prediction | str]:
    """A `{name: html}` JSON file (PubTabNet's `sample_pred.json`) as predictions."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ValueError(f"{path}: expected a JSON object of name → predicted table")
    return dict(data)
