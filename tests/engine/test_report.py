"""The evaluation's files: CSV and summary as scored, HTML that shows but never runs predictions."""

from __future__ import annotations

import csv
import json
import re

from trivia.engine.evaluation import Prediction, score_predictions, summarise
from trivia.engine.labelled import LabelledTable
from trivia.engine.report import safe_table_html, write_report

TRUTH = (
    "<table><tr><td>Dose</td><td>Effect</td></tr><tr><td>5 mg</td><td>x &lt; 3</td></tr></table>"
)
GOOD = "<fcel>Dose<fcel>Effect<nl>\n<fcel>5 mg<fcel>x < 3<nl>\n"
EVIL = (
    '<table><tr><td><script>alert("x")</script>Dose</td>'
    '<td onclick="steal()"><img src=x onerror=alert(1)>&lt;b&gt;</td></tr></table>'
)


def _scores():
    tables = [LabelledTable(name, None, TRUTH) for name in ("good", "evil", "missing")]
    predictions = {"good": Prediction(GOOD, "stop", 0.5), "evil": Prediction(EVIL, "stop", 2.0)}
    return score_predictions(tables, predictions)


def test_files_hold_the_scores(tmp_path):
    scores = _scores()
    summary = summarise(scores, top=2)
    paths = write_report(scores, summary, tmp_path / "report", title="unit <test>")
    with open(paths["csv"], newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["name"] for r in rows] == ["good", "evil", "missing"]
    assert float(rows[0]["teds"]) == scores[0].teds == 1.0
    assert rows[2]["teds"] == "0.0" and rows[2]["error"] == "no prediction"
    assert rows[1]["seconds"] == "2.000" and rows[2]["seconds"] == ""
    saved = json.loads(paths["summary"].read_text())
    assert saved["tables"] == 3 and saved["means"]["teds"] == summary.means["teds"]
    assert [w["name"] for w in saved["worst"]] == ["missing", "evil"]
    assert [s["name"] for s in saved["slowest"]] == ["evil", "good"]


def test_the_html_report_escapes_everything_it_shows(tmp_path):
    scores = _scores()
    paths = write_report(scores, summarise(scores), tmp_path, title="unit <test>")
    page = paths["html"].read_text()
    tags = re.findall(r"<[^>]*>", page)
    assert not [tag for tag in tags if re.search(r"script|onclick|onerror|<img", tag)]
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page  # shown as raw text
    assert "<title>unit &lt;test&gt;</title>" in page
    assert "<td>x &lt; 3</td>" in page  # a cell's text, escaped, beside the ground truth
    assert page.count('<div class="case">') == 3


def test_safe_tables_keep_structure_and_text_only():
    html = safe_table_html(EVIL)
    assert html.startswith("<table>") and "<script" not in html and "<img" not in html
    assert "&lt;b&gt;" in html  # escaped text stays text
    assert safe_table_html("<table></table>") == safe_table_html("") == "<p><em>no table</em></p>"
    spans = safe_table_html('<table><tr><td colspan="2" style="x">a</td></tr></table>')
    assert spans == '<table><tr><td colspan="2">a</td></tr></table>'


def _report_folder(tmp_path, pubtabnet_dir):
    import json as _json

    from trivia.dataset import pubtabnet_html

    records = [
        _json.loads(line) for line in (pubtabnet_dir / "examples.jsonl").read_text().splitlines()
    ]
    tables, predictions = [], {}
    for record in records[:4]:
        html = pubtabnet_html(record["html"])
        name = record["filename"]
        tables.append(LabelledTable(name, pubtabnet_dir / "images" / name, html))
        predictions[name] = Prediction(html.replace("<td>", "<td>9", 1), "stop", 1.0)
    scores = score_predictions(tables, predictions)
    summary = summarise(scores, top=4)
    settings = {"model": {"model": "stub", "cards": [{"root": "/ckpt/7"}]}, "format": "otsl"}
    return write_report(scores, summary, tmp_path / "report", title="four", settings=settings)


def test_the_report_shows_settings_histogram_images_and_differing_cells(tmp_path, pubtabnet_dir):
    paths = _report_folder(tmp_path, pubtabnet_dir)
    page = paths["html"].read_text()
    assert "/ckpt/7" in page and 'class="histogram"' in page
    assert page.count('<img src="data:image/png;base64,') == 4
    assert page.count('class="diff"') >= 8  # the changed first cell, on both sides of four
    saved = json.loads(paths["summary"].read_text())
    assert sum(saved["teds_histogram"]) == 4 and saved["settings"]["format"] == "otsl"


def test_the_report_renders_in_chromium_without_console_errors(tmp_path, pubtabnet_dir):
    from PIL import Image
    from tests.support.browser import render

    broken = tmp_path / "broken.html"
    broken.write_text("<html><body><script>console.error('boom'); nope();</script></body></html>")
    assert len(render(str(broken), tmp_path / "broken.png").console) == 2  # the check can fail

    paths = _report_folder(tmp_path, pubtabnet_dir)
    rendered = render(str(paths["html"]), tmp_path / "report.png")
    assert rendered.console == []
    with Image.open(rendered.screenshot) as shot:
        colours = shot.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # text, tables, images, highlights drawn
