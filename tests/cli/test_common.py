"""`option_group`: a dataclass parameter becomes one option per field, in its place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import typer
from typer.testing import CliRunner

from trivia.cli._common import RecognitionOptions, option_group


@dataclass(frozen=True)
class Pair:
    width: Annotated[int, typer.Option(min=1, help="Width.")] = 3
    name: Annotated[str, typer.Option(help="Name.")] = "a"


_PAIR = Pair()
seen: list[tuple[str, Pair, int]] = []


@option_group
def command(first: Annotated[str, typer.Argument()], pair: Pair = _PAIR, last: int = 0) -> None:
    seen.append((first, pair, last))


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command()(command)
    return app


def test_the_fields_become_options_and_the_command_gets_the_dataclass() -> None:
    seen.clear()
    result = CliRunner().invoke(_app(), ["x", "--width", "5", "--last", "2"])
    assert result.exit_code == 0, result.output
    assert seen == [("x", Pair(width=5, name="a"), 2)]


def test_the_fields_keep_their_bounds_and_their_place_in_the_help() -> None:
    runner = CliRunner()
    assert runner.invoke(_app(), ["x", "--width", "0"]).exit_code == 2
    text = runner.invoke(_app(), ["--help"], env={"COLUMNS": "200"}).output
    assert text.index("--width") < text.index("--name") < text.index("--last")


def test_recognition_options_reach_the_vlm_with_their_values() -> None:
    options = RecognitionOptions(concurrency=3, timeout=9.0, model="m", max_pixels=1000)
    vlm = options.vlm(["http://h/v1"])
    assert (vlm.urls, vlm.model, vlm.concurrency, vlm.timeout) == (["http://h/v1"], "m", 3, 9.0)
    assert vlm.max_pixels == 1000 and vlm.min_pixels == options.min_pixels
