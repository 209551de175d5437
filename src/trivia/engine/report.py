"""The evaluation's files: per-table CSV, summary JSON, and a self-contained HTML report.

The HTML page (the jinja2 template `templates/eval_report.html`, autoescaped) shows the model
and settings, the means, a histogram of raw TEDS, and each of the worst tables as its image
beside the prediction and the ground truth, with the cells that differ highlighted. Both tables
are rebuilt from the parsed table (`html_to_table`), never inserted as given, so a prediction
holding markup or script cannot change the page: only rows, cells, spans and escaped text reach
it. The raw outputs follow, escaped, in collapsible blocks.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2

from trivia.engine.evaluation import METRICS, EvalSummary, TableScore
from trivia.tables import Table, html_to_table, table_to_html, to_html

CSV_FIELDS = ("name", *METRICS, "valid", "reason", "seconds", "error", "excluded")
_IMAGE_PIXELS = 400 * 28 * 28  # images in the page: enough to read a table, small enough to ship

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("trivia.engine", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _exact(value: float | None) -> str:
    return "" if value is None else repr(value)


def _table(markup: str) -> Table | None:
    table = html_to_table(to_html(markup))
    return table if table is not None and table.cells else None


def safe_table_html(markup: str) -> str:
    """`markup` (OTSL or HTML) as a table of rows, cells and escaped text only."""
    table = _table(markup)
    return "<p><em>no table</em></p>" if table is None else table_to_html(table)


def diff_rows(table: Table | None, other: Table | None) -> list[list[dict[str, Any]]] | None:
    """`table`'s rows of cells for the template, each marked `diff` when `other` has no cell
    with the same text and spans at the same place."""
    if table is None:
        return None
    theirs = {
        (c.row, c.col): (c.text.strip(), c.rowspan, c.colspan)
        for c in (other.cells if other else ())
    }
    rows: list[list[dict[str, Any]]] = [[] for _ in range(table.n_rows)]
    for cell in sorted(table.cells, key=lambda c: (c.row, c.col)):
        if 0 <= cell.row < table.n_rows:
            same = theirs.get((cell.row, cell.col)) == (
                cell.text.strip(),
                cell.rowspan,
                cell.colspan,
            )
            rows[cell.row].append(
                {
                    "tag": "th" if cell.header else "td",
                    "text": cell.text,
                    "rowspan": cell.rowspan,
                    "colspan": cell.colspan,
                    "diff": not same,
                }
            )
    return rows


def _image_url(score: TableScore) -> str | None:
    if score.image is None:
        return None
    from trivia.engine.images import image_data_url

    try:
        return image_data_url(score.image, max_pixels=_IMAGE_PIXELS, min_pixels=28 * 28)
    except (OSError, ValueError):
        return None


def _case(score: TableScore) -> dict[str, Any]:
    notes = []
    if not score.valid:
        notes.append(f"invalid output ({score.reason or ''})")
    if score.error:
        notes.append(score.error)
    predicted, truth = _table(score.prediction), _table(score.truth)
    return {
        "name": score.name,
        "values": ", ".join(f"{m} {_number(score.metric(m))}" for m in METRICS),
        "notes": notes,
        "image": _image_url(score),
        "prediction": diff_rows(predicted, truth),
        "truth": diff_rows(truth, predicted),
        "raw_prediction": score.prediction,
        "raw_truth": score.truth,
    }


def render_html(
    summary: EvalSummary,
    *,
    title: str = "Table recognition report",
    settings: Mapping[str, Any] | None = None,
) -> str:
    """The report page for `summary` (its worst tables side by side)."""
    widest = max([*summary.histogram, 1])
    bins = len(summary.histogram)
    histogram = [
        {
            "label": f"{i / bins:.1f}–{(i + 1) / bins:.1f}",
            "count": count,
            "height": round(100 * count / widest),
        }
        for i, count in enumerate(summary.histogram)
    ]
    shown = [
        (name, value if isinstance(value, str) else json.dumps(value, default=str))
        for name, value in (settings or {}).items()
    ]
    return _env.get_template("eval_report.html").render(
        title=title,
        summary=summary,
        settings=shown,
        means=[(name, _number(summary.means[name])) for name in METRICS],
        histogram=histogram,
        slowest=[(s.name, s.seconds) for s in summary.slowest if s.seconds is not None],
        cases=[_case(score) for score in summary.worst],
    )


def write_report(
    scores: Sequence[TableScore],
    summary: EvalSummary,
    out: Path,
    *,
    title: str | None = None,
    settings: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """Write `per_table.csv`, `summary.json` and `index.html` under `out`; returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "csv": out / "per_table.csv",
        "summary": out / "summary.json",
        "html": out / "index.html",
    }
    with open(paths["csv"], "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_FIELDS)
        for s in scores:
            writer.writerow(
                [
                    s.name,
                    *(_exact(s.metric(m)) for m in METRICS),
                    s.valid,
                    s.reason or "",
                    "" if s.seconds is None else f"{s.seconds:.3f}",
                    s.error or "",
                    s.excluded,
                ]
            )
    saved = summary.as_dict() | {"settings": dict(settings or {})}
    paths["summary"].write_text(
        json.dumps(saved, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8"
    )
    paths["html"].write_text(
        render_html(summary, title=title or "Table recognition report", settings=settings),
        encoding="utf-8",
    )
    return paths
