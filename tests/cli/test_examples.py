"""`trivia score-examples` runs the table core on the shipped PubTabNet samples."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trivia.cli import app
from trivia.cli.examples import DEFAULT_EXAMPLES, round_trip

runner = CliRunner()


def _records(pubtabnet: Path) -> list[dict]:
    lines = (pubtabnet / "examples.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_examples_are_found_in_the_repository_by_default(pubtabnet: Path) -> None:
    assert pubtabnet == DEFAULT_EXAMPLES / "pubtabnet"


def test_the_otsl_round_trip_keeps_every_shipped_table(pubtabnet: Path) -> None:
    for record in _records(pubtabnet):
        result = round_trip(record["filename"], record["html"])
        assert result.cells == len(record["html"]["cells"])
        assert result.otsl_tokens >= result.cells
        # OTSL drops <thead>/<tbody> and inline markup: raw TEDS counts them, normalised does not.
        assert 0.8 < result.teds <= result.teds_structure < 1.0, record["filename"]
        assert result.teds_normalised == 1.0, record["filename"]


def test_score_examples_prints_both_tables_with_means(pubtabnet: Path) -> None:
    result = runner.invoke(app, ["score-examples"], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    out = result.stdout
    for record in _records(pubtabnet):
        assert record["filename"] in out
    published = json.loads((pubtabnet / "sample_expected_teds.json").read_text())
    for name in published:
        assert name in out
    mean = f"{sum(published.values()) / len(published):.4f}"
    assert re.search(rf"│ mean +│ +{mean} │ +{mean} │", out)
    assert re.search(r"│ mean +│ +│ +│ +0\.9\d+ │ +0\.9\d+ │ +1\.0000 │", out)
    assert "OTSL tokens" in out


def test_score_examples_reads_another_examples_folder(pubtabnet: Path, tmp_path: Path) -> None:
    folder = tmp_path / "pubtabnet"
    folder.mkdir()
    (folder / "examples.jsonl").write_text(
        "\n".join(json.dumps(r) for r in _records(pubtabnet)[:2]) + "\n"
    )
    name = "PMC2094709_004_00.png"
    for file in ("sample_pred.json", "sample_gt.json", "sample_expected_teds.json"):
        data = json.loads((pubtabnet / file).read_text())
        (folder / file).write_text(json.dumps({name: data[name]}))

    result = runner.invoke(
        app, ["score-examples", "--examples", str(tmp_path)], env={"COLUMNS": "160"}
    )
    assert result.exit_code == 0, result.output
    shown = [r["filename"] for r in _records(pubtabnet) if r["filename"] in result.stdout]
    assert shown == [r["filename"] for r in _records(pubtabnet)[:2]]
    assert re.search(rf"{name} +│ +1\.0000 │ +1\.0000 │", result.stdout)


@pytest.mark.parametrize("missing", ["examples.jsonl", "sample_gt.json"])
def test_score_examples_without_its_files_is_a_clear_error(
    pubtabnet: Path, tmp_path: Path, missing: str
) -> None:
    shutil.copytree(pubtabnet, tmp_path / "pubtabnet", ignore=shutil.ignore_patterns("images"))
    (tmp_path / "pubtabnet" / missing).unlink()
    result = runner.invoke(app, ["score-examples", "--examples", str(tmp_path)])
    assert result.exit_code == 2
    assert missing in result.stderr
