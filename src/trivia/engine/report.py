"""The evaluation's files: per-table CSV, summary JSON, and a self-contained HTML report.

The HTML report puts each of the worst tables' prediction beside its ground truth. Both are
rendered from the parsed table (`html_to_table` → `table_to_html`), never inserted as given, so
a prediction holding markup or script cannot change the page: only rows, cells, spans and
escaped text reach it. The raw outputs follow, escaped, in collapsible blocks.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from html import escape
from pathlib import Path

from trivia.engine.evaluation import METRICS, EvalSummary, TableScore
from trivia.tables import html_to_table, table_to_html, to_html

__all__ = ["render_html", "safe_table_html", "write_report"]

CSV_FIELDS = ("name", *METRICS, "valid", "reason", "seconds", "error")

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table.scores { border-collapse: collapse; margin-bottom: 2em; }
table.scores td, table.scores th { border: 1px solid #bbb; padding: 2px 8px; text-align: right; }
.case { margin-bottom: 3em; }
.pair { display: flex; gap: 2em; align-items: flex-start; }
.pair > div { flex: 1; overflow-x: auto; }
.pair table { border-collapse: collapse; font-size: 12px; }
.pair td { border: 1px solid #999; padding: 2px 4px; }
pre { white-space: pre-wrap; word-break: break-all; background: #f6f6f6; padding: 0.5em; }
"""


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _exact(value: float | None) -> str:
    return "" if value is None else repr(value)


def safe_table_html(markup: str) -> str:
    """`markup` (OTSL or HTML) as a table of rows, cells and escaped text only."""
    table = html_to_table(to_html(markup))
    if table is None or not table.cells:
        return "<p><em>no table</em></p>"
    return table_to_html(table)


def render_html(summary: EvalSummary, *, title: str = "Table recognition report") -> str:
    """The report page for `summary` (its worst tables side by side)."""
    means = "".join(
        f"<tr><th>{escape(name)}</th><td>{_number(summary.means[name])}</td></tr>"
        for name in METRICS
    )
    cases = []
    for score in summary.worst:
        values = ", ".join(f"{m} {_number(score.metric(m))}" for m in METRICS)
        notes = []
        if not score.valid:
            notes.append(f"invalid output ({escape(score.reason or '')})")
        if score.error:
            notes.append(escape(score.error))
        cases.append(
            f'<div class="case"><h3>{escape(score.name)}</h3>'
            f"<p>{escape(values)}{'; ' + '; '.join(notes) if notes else ''}</p>"
            f'<div class="pair"><div><h4>Prediction</h4>{safe_table_html(score.prediction)}</div>'
            f"<div><h4>Ground truth</h4>{safe_table_html(score.truth)}</div></div>"
            f"<details><summary>raw prediction</summary><pre>{escape(score.prediction)}</pre>"
            f"</details><details><summary>raw ground truth</summary>"
            f"<pre>{escape(score.truth)}</pre></details></div>"
        )
    slow = "".join(
        f"<tr><td>{escape(s.name)}</td><td>{s.seconds:.2f} s</td></tr>" for s in summary.slowest
    )
    slow_section = (
        f'<h2>Slowest tables</h2><table class="scores">{slow}</table>' if summary.slowest else ""
    )
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1>"
        f"<p>{summary.tables} tables, {summary.scored} scored, {summary.valid} valid outputs.</p>"
        f'<table class="scores">{means}</table>{slow_section}'
        f"<h2>Worst tables</h2>{''.join(cases) or '<p>none</p>'}</body></html>\n"
    )


def write_report(
    scores: Sequence[TableScore], summary: EvalSummary, out: Path, *, title: str | None = None
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
                ]
            )
    paths["summary"].write_text(
        json.dumps(summary.as_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    paths["html"].write_text(
        render_html(summary, title=title or "Table recognition report"), encoding="utf-8"
    )
    return paths
