"""`trivia score-examples`: the table core at work on the shipped PubTabNet samples.

Two checks a reader can verify by eye. First, every ground-truth table survives the HTML → OTSL →
HTML round trip the policy's output goes through: raw TEDS is below 1 only because OTSL carries
neither ``<thead>``/``<tbody>`` nor inline markup such as ``<b>``, and after ``normalize_html``
(which drops both) the score is exactly 1. Second, our TEDS reproduces the scores published with
PubTabNet's official metric for its sample predictions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

import trivia
from trivia.cli import app
from trivia.cli.tables import fail, load_tables, stderr_progress
from trivia.dataset import pubtabnet_html
from trivia.metrics import teds
from trivia.tables import html_to_otsl, normalize_html, otsl_to_html
from trivia.tables.otsl import OTSL_TAG

# The package is installed editable from src/trivia, so the repository is two folders above it.
DEFAULT_EXAMPLES = Path(trivia.__file__).resolve().parents[2] / "examples"


@dataclass(frozen=True, slots=True)
class RoundTrip:
    """How one ground-truth table fares through HTML → OTSL → HTML."""

    name: str
    cells: int
    otsl_tokens: int
    teds: float
    teds_structure: float
    teds_normalised: float


def round_trip(name: str, annotation: Mapping[str, Any]) -> RoundTrip:
    """Convert a PubTabNet table to OTSL and back, and score the result against the original."""
    truth = pubtabnet_html(annotation)
    otsl = html_to_otsl(truth)
    back = otsl_to_html(otsl)
    return RoundTrip(
        name=name,
        cells=len(annotation["cells"]),
        otsl_tokens=len(OTSL_TAG.findall(otsl)),
        teds=teds(back, truth),
        teds_structure=teds(back, truth, structure_only=True),
        teds_normalised=teds(normalize_html(back), normalize_html(truth)),
    )


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _round_trip_table(results: list[RoundTrip]) -> Table:
    table = Table(
        title="PubTabNet ground truth through HTML → OTSL → HTML",
        caption="raw TEDS counts <thead>/<tbody> and inline markup, which OTSL does not carry",
        show_footer=True,
    )
    table.add_column("table", footer="mean", no_wrap=True)
    table.add_column("cells", justify="right")
    table.add_column("OTSL tokens", justify="right")
    table.add_column("TEDS", justify="right", footer=f"{_mean([r.teds for r in results]):.4f}")
    table.add_column(
        "TEDS-S", justify="right", footer=f"{_mean([r.teds_structure for r in results]):.4f}"
    )
    table.add_column(
        "TEDS normalised",
        justify="right",
        footer=f"{_mean([r.teds_normalised for r in results]):.4f}",
    )
    for r in results:
        table.add_row(
            r.name,
            str(r.cells),
            str(r.otsl_tokens),
            f"{r.teds:.4f}",
            f"{r.teds_structure:.4f}",
            f"{r.teds_normalised:.4f}",
        )
    return table


def _official_table(published: dict[str, float], ours: dict[str, float]) -> Table:
    table = Table(title="PubTabNet sample predictions: published TEDS and ours", show_footer=True)
    table.add_column("table", footer="mean", no_wrap=True)
    table.add_column("published", justify="right", footer=f"{_mean(list(published.values())):.4f}")
    table.add_column("ours", justify="right", footer=f"{_mean(list(ours.values())):.4f}")
    largest = max((abs(ours[n] - published[n]) for n in published), default=0.0)
    table.add_column("|difference|", justify="right", footer=f"max {largest:.1e}")
    for name, expected in published.items():
        table.add_row(
            name, f"{expected:.4f}", f"{ours[name]:.4f}", f"{abs(ours[name] - expected):.1e}"
        )
    return table


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise fail(f"cannot read {path}: {error}") from error


@app.command("score-examples")
def demo_command(
    examples: Annotated[
        Path,
        typer.Option(
            "--examples",
            metavar="DIR",
            file_okay=False,
            help="Folder holding pubtabnet/ (examples.jsonl and the official samples).",
        ),
    ] = DEFAULT_EXAMPLES,
) -> None:
    """Round-trip the shipped PubTabNet tables through OTSL and reproduce the official TEDS."""
    folder = examples / "pubtabnet"
    annotations_file = folder / "examples.jsonl"
    if not annotations_file.is_file():
        raise fail(f"{annotations_file} not found; pass --examples DIR")
    try:
        lines = annotations_file.read_text(encoding="utf-8").splitlines()
        records = [json.loads(line) for line in lines if line.strip()]
    except (OSError, json.JSONDecodeError) as error:
        raise fail(f"cannot read {annotations_file}: {error}") from error

    console = Console()
    with stderr_progress() as progress:
        results = [
            round_trip(record["filename"], record["html"])
            for record in progress.track(records, description="round trip")
        ]
    console.print(_round_trip_table(results))

    predictions = load_tables(folder / "sample_pred.json")
    truths = load_tables(folder / "sample_gt.json")
    published = _read_json(folder / "sample_expected_teds.json")
    if not isinstance(predictions, dict) or not isinstance(truths, dict):
        raise fail(f"{folder}: sample_pred.json and sample_gt.json must be JSON maps")
    if not isinstance(published, dict):
        raise fail(f"{folder}: sample_expected_teds.json must be a JSON map")
    unscored = [name for name in published if name not in predictions or name not in truths]
    if unscored:
        raise fail(f"{folder}: no prediction or ground truth for {', '.join(unscored)}")
    with stderr_progress() as progress:
        ours = {
            name: teds(predictions[name], truths[name])
            for name in progress.track(published, description="official samples")
        }
    console.print(_official_table(published, ours))
