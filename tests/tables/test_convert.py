from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import lxml.html
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tables_support import html_soup, otsl_soup, tilings

from trivia.tables import (
    Table,
    html_to_otsl,
    html_to_table,
    otsl_to_html,
    otsl_to_table,
    table_to_otsl,
    to_html,
)

PUBTABNET_GT = Path(__file__).parents[2] / "examples" / "pubtabnet" / "sample_gt.json"


def grid(html: str) -> tuple:
    table = html_to_table(html)
    assert table is not None
    return table.structure(), table.text_grid()


# --- otsl_to_html ----------------------------------------------------------------------------


def test_otsl_to_html_writes_spans() -> None:
    otsl = "<fcel>A<lcel><fcel>B<nl>\n<ucel><xcel><fcel>C<nl>\n<fcel>D<ecel><ucel><nl>\n"
    assert otsl_to_html(otsl) == (
        '<table><tr><td rowspan="2" colspan="2">A</td><td>B</td></tr>'
        '<tr><td rowspan="2">C</td></tr>'
        "<tr><td>D</td><td></td></tr></table>"
    )


def test_otsl_to_html_escapes_cell_text() -> None:
    html = otsl_to_html("<fcel>a & b<fcel>x<y>z<fcel></td><script>1</script><nl>\n")
    assert "<script>" not in html
    cells = [td.text_content() for td in lxml.html.fromstring(html).iter("td")]
    assert cells == ["a & b", "x<y>z", "</td><script>1</script>"]


@pytest.mark.parametrize(
    "otsl",
    ["", "   ", "garbage<y>", "<lcel><ucel><xcel><nl>", "<fcel>a<nl><fcel>b<fcel>c<fcel>d",
     "<nl><nl>", "<fcel>unterminated", "<fcel>" * 3000, "\x00<fcel>\ud800<nl>"],
)  # fmt: skip
def test_otsl_to_html_is_total_and_gives_a_table(otsl: str) -> None:
    html = otsl_to_html(otsl)
    assert html.startswith("<table>") and html.endswith("</table>")
    assert html_to_table(html) is not None


@pytest.mark.timeout(20)  # a hang guard: quadratic repair would take minutes
def test_otsl_to_html_of_50k_characters_finishes() -> None:
    otsl = ("<fcel>cell text<lcel><ecel><nl>\n" + "<ucel><xcel><fcel>x<y>z<nl>\n") * 900
    assert len(otsl) >= 50_000
    html = otsl_to_html(otsl)
    assert html.count("<tr>") == 1800


# --- html_to_otsl ----------------------------------------------------------------------------


def test_html_to_otsl_reads_row_groups_headers_and_spans() -> None:
    html = (
        "<table><thead><tr><th rowspan='2'>N</th><th colspan='2.0'>S</th></tr>"
        "<tr><th>a</th><th>b</th></tr></thead><tbody><tr><td>x</td><td colspan=abc>1</td>"
        "<td>2</td></tr></tbody></table>"
    )
    assert html_to_otsl(html) == (
        "<fcel>N<fcel>S<lcel><nl>\n<ucel><fcel>a<fcel>b<nl>\n<fcel>x<fcel>1<fcel>2<nl>\n"
    )


def test_html_to_otsl_without_a_table_is_empty() -> None:
    assert html_to_otsl("no table here") == ""
    assert html_to_otsl("") == ""


# --- to_html ---------------------------------------------------------------------------------


def test_to_html_converts_otsl() -> None:
    assert to_html("<fcel>a<nl>\n") == "<table><tr><td>a</td></tr></table>"


def test_to_html_keeps_html_markup_and_closes_truncation() -> None:
    completion = "Sure:\n<TABLE><thead><tr><th><b>Name</b></th></tr></thead><tr><td>x<sup>2"
    assert to_html(completion) == (
        "<table><thead><tr><th><b>Name</b></th></tr></thead><tr><td>x<sup>2</sup></td></tr></table>"
    )


def test_to_html_of_html_with_no_readable_table_is_an_empty_table() -> None:
    assert to_html("text then <table") == "<table></table>"


@settings(max_examples=200, deadline=None)
@given(st.one_of(otsl_soup, html_soup, st.text()))
def test_to_html_is_total_and_always_gives_one_table(text: str) -> None:
    html = to_html(text)
    assert html.startswith("<table") and html.endswith("</table>")
    assert html_to_table(html) is not None


# --- round trips -----------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(st.one_of(otsl_soup, st.text()))
def test_otsl_html_otsl_html_keeps_the_grid(otsl: str) -> None:
    first = otsl_to_html(otsl)
    again = otsl_to_html(html_to_otsl(first))
    assert grid(again) == grid(first)


@settings(max_examples=200, deadline=None)
@given(tilings())
def test_well_formed_otsl_survives_html_unchanged(table: Table) -> None:
    cells = tuple(dataclasses.replace(c, text=c.text.replace("\x00", "")) for c in table.cells)
    otsl = table_to_otsl(dataclasses.replace(table, cells=cells))  # HTML cannot carry NUL
    assert html_to_otsl(otsl_to_html(otsl)) == otsl


def pubtabnet_ground_truths() -> list[tuple[str, str]]:
    samples = json.loads(PUBTABNET_GT.read_text(encoding="utf-8"))
    return [(name, sample["html"]) for name, sample in sorted(samples.items())]


def test_there_are_20_pubtabnet_ground_truths() -> None:
    assert len(pubtabnet_ground_truths()) == 20


@pytest.mark.parametrize(("name", "html"), pubtabnet_ground_truths())
def test_pubtabnet_ground_truth_survives_otsl(name: str, html: str) -> None:
    table = html_to_table(html)
    assert table is not None and table.cells
    back = otsl_to_table(html_to_otsl(html))
    assert back.structure() == table.structure()
    assert back.text_grid() == table.text_grid()
    assert grid(otsl_to_html(html_to_otsl(html))) == (table.structure(), table.text_grid())
