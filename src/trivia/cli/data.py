"""Data commands: `trivia data validate`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trivia.cli import data_app
from trivia.dataset import validate_jsonl


@data_app.command("validate")
def validate_command(
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE.jsonl", exists=True, dir_okay=False, help="Dataset in ms-swift JSONL."
        ),
    ],
) -> None:
    """Check every row of a training file; print each problem as `file:line: reason`."""
    report = validate_jsonl(file)
    for problem in report.problems:
        typer.echo(str(problem))
    if not report.ok:
        typer.echo(f"{report.bad_rows} bad and {report.good_rows} good rows in {file}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{report.good_rows} good rows in {file}")
