"""PubTabNet annotations become the HTML tables they describe."""

from __future__ import annotations

import json
from pathlib import Path

import lxml.html
import pytest

from trivia.dataset.pubtabnet import pubtabnet_html

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "pubtabnet" / "examples.jsonl"


def _annotation(structure: list[str], *cells: list[str]) -> dict:
    return {"structure": {"tokens": structure}, "cells": [{"tokens": c} for c in cells]}


def test_cell_text_goes_before_each_closing_td_in_order() -> None:
    annotation = _annotation(
        ["<thead>", "<tr>", "<td>", "</td>", "<td>", "</td>", "</tr>", "</thead>"],
        list("Age"),
        [],
    )
    assert pubtabnet_html(annotation) == (
        "<html><body><table><thead><tr><td>Age</td><td></td></tr></thead></table></body></html>"
    )


def test_spans_markup_and_escaping() -> None:
    annotation = _annotation(
        ["<tr>", "<td", ' colspan="2"', ">", "</td>", "</tr>"],
        ["<b>", "a", " ", "<", " ", "&", "</b>"],
    )
    assert pubtabnet_html(annotation) == (
        '<html><body><table><tr><td colspan="2"><b>a &lt; &amp;</b></td></tr></table></body></html>'
    )


def test_cell_count_must_match_the_structure() -> None:
    with pytest.raises(ValueError, match="2 cells but 1"):
        pubtabnet_html(_annotation(["<tr>", "<td>", "</td>", "<td>", "</td>", "</tr>"], ["x"]))


def test_every_shipped_example_builds_a_table_with_its_cells() -> None:
    records = [json.loads(line) for line in EXAMPLES.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 20
    for record in records:
        html = pubtabnet_html(record["html"])
        cells = lxml.html.fromstring(html).xpath("//table//td")
        assert len(cells) == len(record["html"]["cells"]), record["filename"]
        for cell, annotation in zip(cells, record["html"]["cells"], strict=True):
            expected = "".join(t for t in annotation["tokens"] if len(t) == 1)
            assert cell.text_content() == expected, record["filename"]
