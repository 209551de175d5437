"""`trivia teds` and `trivia convert` on real files."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import lxml.html
import pytest
from typer.testing import CliRunner

from trivia.cli import app
from trivia.tables import html_to_otsl, otsl_to_html

runner = CliRunner()
TRIVIA = Path(sys.executable).parent / "trivia"


def _published(pubtabnet: Path) -> dict[str, float]:
    return json.loads((pubtabnet / "sample_expected_teds.json").read_text())


def test_installed_entry_point_reproduces_the_official_sample_scores(pubtabnet: Path) -> None:
    completed = subprocess.run(
        [
            str(TRIVIA),
            "teds",
            "--json",
            pubtabnet / "sample_pred.json",
            pubtabnet / "sample_gt.json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "120"},
    )
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    published = _published(pubtabnet)
    assert result["metric"] == "TEDS"
    assert result["scores"] == pytest.approx(published, abs=1e-12)
    assert result["mean"] == pytest.approx(sum(published.values()) / len(published), abs=1e-12)
    assert result["missing"] == []


def test_maps_print_a_table_per_name_and_the_mean(pubtabnet: Path) -> None:
    result = runner.invoke(
        app,
        ["teds", str(pubtabnet / "sample_pred.json"), str(pubtabnet / "sample_gt.json")],
        env={"COLUMNS": "120"},
    )
    assert result.exit_code == 0, result.output
    published = _published(pubtabnet)
    for name, score in published.items():
        assert re.search(rf"│ {name} +│ +{score:.4f} │", result.stdout), name
    assert re.search(rf"│ mean +│ +{sum(published.values()) / len(published):.4f} │", result.stdout)


def test_names_missing_from_pred_score_zero_and_are_flagged(
    pubtabnet: Path, tmp_path: Path
) -> None:
    predictions = json.loads((pubtabnet / "sample_pred.json").read_text())
    dropped = sorted(predictions)[:2]
    for name in dropped:
        del predictions[name]
    predictions["not-in-gt.png"] = "<table></table>"
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps(predictions))
    gt = pubtabnet / "sample_gt.json"

    result = runner.invoke(app, ["teds", "--json", str(pred), str(gt)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    published = _published(pubtabnet)
    truths = json.loads(gt.read_text())
    assert data["missing"] == sorted(dropped, key=list(truths).index)
    assert data["extra"] == ["not-in-gt.png"]
    assert all(data["scores"][name] == 0.0 for name in dropped)
    expected = {name: (0.0 if name in dropped else score) for name, score in published.items()}
    assert data["mean"] == pytest.approx(sum(expected.values()) / len(expected))

    shown = runner.invoke(app, ["teds", str(pred), str(gt)], env={"COLUMNS": "120"})
    flagged = [line for line in shown.stdout.splitlines() if "missing from PRED" in line]
    assert [line.split()[1] for line in flagged] == data["missing"]
    assert "not-in-gt.png" in shown.stderr


def test_single_files_print_one_score(pubtabnet: Path, tmp_path: Path) -> None:
    name = "PMC4219599_004_00.png"  # published TEDS 0.6029978075326913
    pred, gt = tmp_path / "pred.html", tmp_path / "gt.html"
    pred.write_text(json.loads((pubtabnet / "sample_pred.json").read_text())[name])
    gt.write_text(json.loads((pubtabnet / "sample_gt.json").read_text())[name]["html"])

    result = runner.invoke(app, ["teds", str(pred), str(gt)])
    assert result.exit_code == 0, result.output
    assert result.stdout == "TEDS 0.6030\n"

    as_json = json.loads(runner.invoke(app, ["teds", "--json", str(pred), str(gt)]).stdout)
    assert as_json == {"metric": "TEDS", "score": pytest.approx(_published(pubtabnet)[name])}

    structure = runner.invoke(app, ["teds", "--json", "--structure-only", str(pred), str(gt)])
    teds_s = json.loads(structure.stdout)
    assert teds_s["metric"] == "TEDS-S"
    assert as_json["score"] < teds_s["score"] <= 1.0

    identical = runner.invoke(app, ["teds", str(gt), str(gt)])
    assert identical.stdout == "TEDS 1.0000\n"


def test_a_file_and_a_map_cannot_be_compared(pubtabnet: Path, tmp_path: Path) -> None:
    html = tmp_path / "one.html"
    html.write_text("<table><tr><td>1</td></tr></table>")
    result = runner.invoke(app, ["teds", str(html), str(pubtabnet / "sample_gt.json")])
    assert result.exit_code == 2
    assert "both be HTML files or both be JSON maps" in result.stderr


def test_a_map_value_that_is_not_html_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"t.png": {"structure": []}}))
    result = runner.invoke(app, ["teds", str(bad), str(bad)])
    assert result.exit_code == 2
    assert "'t.png' is neither an HTML string" in result.stderr


OTSL = "<fcel>Age<fcel>Sex<nl>\n<fcel>42<ecel><nl>\n"


def _cell_texts(html: str) -> list[list[str]]:
    root = lxml.html.fromstring(html)
    return [[td.text_content() for td in tr.xpath("./td|./th")] for tr in root.xpath("//tr")]


def test_convert_otsl_to_html_on_stdout(tmp_path: Path) -> None:
    source = tmp_path / "table.otsl"
    source.write_text(OTSL)
    for extra in ([], ["-"]):
        result = runner.invoke(app, ["convert", "otsl2html", str(source), *extra])
        assert result.exit_code == 0, result.output
        assert result.stdout.rstrip("\n") == otsl_to_html(OTSL).rstrip("\n")
        assert _cell_texts(result.stdout) == [["Age", "Sex"], ["42", ""]]


def test_convert_html_to_otsl_into_a_file_and_back_from_stdin(tmp_path: Path) -> None:
    source, target = tmp_path / "table.html", tmp_path / "table.otsl"
    html = "<table><tr><td>Age</td><td>Sex</td></tr><tr><td>42</td><td></td></tr></table>"
    source.write_text(html)
    result = runner.invoke(app, ["convert", "html2otsl", str(source), str(target)])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert target.read_text() == html_to_otsl(html)

    back = runner.invoke(app, ["convert", "otsl2html", "-"], input=target.read_text())
    assert back.exit_code == 0, back.output
    assert _cell_texts(back.stdout) == [["Age", "Sex"], ["42", ""]]


def test_convert_rejects_an_unknown_direction_and_a_missing_file(tmp_path: Path) -> None:
    assert runner.invoke(app, ["convert", "otsl2latex", "x"]).exit_code == 2
    missing = runner.invoke(app, ["convert", "otsl2html", str(tmp_path / "none.otsl")])
    assert missing.exit_code == 2
    assert "cannot read" in missing.stderr


def test_tables_too_large_to_score_are_flagged_and_left_out(tmp_path: Path) -> None:
    huge = "<table><tr><td>" + "x" * 200_001 + "</td></tr></table>"
    small = "<table><tr><td>1</td></tr></table>"
    pred, gt = tmp_path / "pred.json", tmp_path / "gt.json"
    pred.write_text(json.dumps({"a": small, "b": huge}))
    gt.write_text(json.dumps({"a": {"html": small}, "b": {"html": small}}))

    data = json.loads(runner.invoke(app, ["teds", "--json", str(pred), str(gt)]).stdout)
    assert (data["scores"], data["too_large"], data["mean"]) == ({"a": 1.0}, ["b"], 1.0)
    shown = runner.invoke(app, ["teds", str(pred), str(gt)], env={"COLUMNS": "120"})
    assert re.search(r"│ b +│ +- +│ too large to score", shown.stdout)

    one_pred, one_gt = tmp_path / "pred.html", tmp_path / "gt.html"
    one_pred.write_text(huge)
    one_gt.write_text(small)
    single = runner.invoke(app, ["teds", str(one_pred), str(one_gt)])
    assert single.exit_code == 1
    assert "too large" in single.stderr
