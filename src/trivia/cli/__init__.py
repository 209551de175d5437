"""The `trivia` command line: one sub-module per group of commands, assembled here."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="trivia",
    help="TRivia Stack: table recognition trained with a question-answering reward.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Prepare and check training data.", no_args_is_help=True)
app.add_typer(data_app, name="data")

# Command modules register themselves on `app` / `data_app` when imported.
from trivia.cli import data as _data  # noqa: E402,F401
from trivia.cli import engine as _engine  # noqa: E402,F401
from trivia.cli import engine_qa as _engine_qa  # noqa: E402,F401
from trivia.cli import examples as _examples  # noqa: E402,F401
from trivia.cli import qa as _qa  # noqa: E402,F401
from trivia.cli import reward as _reward  # noqa: E402,F401
from trivia.cli import tables as _tables  # noqa: E402,F401
from trivia.cli import train as _train  # noqa: E402,F401


def main() -> None:
    app()
