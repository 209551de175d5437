"""Table commands: `trivia teds`, `trivia convert`."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from trivia.cli import app
from trivia.cli._common import choices
from trivia.metrics import TableTooLarge, teds
from trivia.tables import html_to_otsl, otsl_to_html

STDIO = "-"


def stderr_progress() -> Progress:
    """A progress bar on stderr, so that stdout stays the command's result."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print an error on stderr (unwrapped, so paths stay whole) and return the exit to raise."""
    typer.echo(f"{typer.style('error:', fg='red')} {message}", err=True)
    return typer.Exit(code)


def _html_of(value: object, path: Path, name: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("html"), str):
        return value["html"]
    raise fail(f"{path}: {name!r} is neither an HTML string nor an object with an 'html' string")


def load_tables(path: Path) -> str | dict[str, str]:
    """One HTML table, or a JSON map ``{name: html}`` / ``{name: {"html": html}}``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise fail(f"cannot read {path}: {error}") from error
    if not text.lstrip().startswith("{"):
        return text
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise fail(f"{path}: not valid JSON ({error})") from error
    return {name: _html_of(value, path, name) for name, value in data.items()}


@dataclass(slots=True)
class MapScores:
    """Scores of a prediction map against a ground-truth map; ``missing`` names count as 0."""

    scores: dict[str, float] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    too_large: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return sum(self.scores.values()) / len(self.scores) if self.scores else 0.0


def score_maps(
    predictions: dict[str, str], truths: dict[str, str], *, structure_only: bool
) -> MapScores:
    """Score every ground-truth table; tables too large to score are left out of the mean."""
    result = MapScores(extra=[name for name in predictions if name not in truths])
    with stderr_progress() as progress:
        for name in progress.track(truths, description="TEDS"):
            if name not in predictions:
                result.missing.append(name)
                result.scores[name] = 0.0
                continue
            try:
                result.scores[name] = teds(
                    predictions[name], truths[name], structure_only=structure_only
                )
            except TableTooLarge:
                result.too_large.append(name)
    return result


def _print_map_scores(result: MapScores, metric: str) -> None:
    table = Table(title=f"{metric} per table", show_footer=True)
    table.add_column("name", footer="mean", no_wrap=True)
    table.add_column(metric, footer=f"{result.mean:.4f}", justify="right")
    flagged = bool(result.missing or result.too_large)
    if flagged:
        table.add_column("note")
    for name, score in result.scores.items():
        note = "[yellow]missing from PRED[/yellow]" if name in result.missing else ""
        table.add_row(name, f"{score:.4f}", *([note] if flagged else []))
    for name in result.too_large:
        table.add_row(name, "-", "[yellow]too large to score[/yellow]")
    console = Console()
    console.print(table)
    if result.extra:
        typer.echo(f"not in GT, ignored: {', '.join(result.extra)}", err=True)


@app.command("teds")
def teds_command(
    pred: Annotated[
        Path, typer.Argument(metavar="PRED", help="Predicted HTML table, or a JSON map of them.")
    ],
    gt: Annotated[
        Path, typer.Argument(metavar="GT", help="Ground-truth HTML table, or a JSON map of them.")
    ],
    structure_only: Annotated[
        bool, typer.Option("--structure-only", help="Ignore cell text (TEDS-S).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Score predicted tables against the ground truth with TEDS (PubTabNet's definition)."""
    metric = "TEDS-S" if structure_only else "TEDS"
    predictions, truths = load_tables(pred), load_tables(gt)
    if isinstance(predictions, str) and isinstance(truths, str):
        try:
            score = teds(predictions, truths, structure_only=structure_only)
        except TableTooLarge as error:
            raise fail(str(error), code=1) from error
        if as_json:
            typer.echo(json.dumps({"metric": metric, "score": score}))
        else:
            typer.echo(f"{metric} {score:.4f}")
        return
    if isinstance(predictions, str) or isinstance(truths, str):
        raise fail("PRED and GT must both be HTML files or both be JSON maps")
    result = score_maps(predictions, truths, structure_only=structure_only)
    if as_json:
        payload = {
            "metric": metric,
            "mean": result.mean,
            "scores": result.scores,
            "missing": result.missing,
            "too_large": result.too_large,
            "extra": result.extra,
        }
        typer.echo(json.dumps(payload, indent=1, ensure_ascii=False))
    else:
        _print_map_scores(result, metric)


#: Which way `trivia convert` goes.
_CONVERTERS = {"otsl2html": otsl_to_html, "html2otsl": html_to_otsl}
Direction = choices("Direction", _CONVERTERS)


@app.command("convert")
def convert_command(
    direction: Annotated[Direction, typer.Argument(help="otsl2html or html2otsl.")],
    source: Annotated[str, typer.Argument(metavar="IN", help="Input file, or - for stdin.")],
    target: Annotated[
        str, typer.Argument(metavar="OUT", help="Output file; - or none for stdout.")
    ] = STDIO,
) -> None:
    """Convert a table between OTSL and HTML."""
    try:
        text = sys.stdin.read() if source == STDIO else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise fail(f"cannot read {source}: {error}") from error
    convert = _CONVERTERS[direction]
    try:
        converted = convert(text)
    except ValueError as error:
        raise fail(f"cannot convert {source}: {error}", code=1) from error
    if target == STDIO:
        typer.echo(converted, nl=not converted.endswith("\n"))
    else:
        Path(target).write_text(converted, encoding="utf-8")
