from __future__ import annotations

import lxml.html
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tables_support import html_soup, otsl_soup

from trivia.tables import html_to_table, normalize_html, otsl_to_html


def body(html: str) -> str:
    """The normalised table without the fixed document wrapper."""
    out = normalize_html(html)
    assert out.startswith("<html><body><table>") and out.endswith("</table></body></html>")
    return out[len("<html><body>") : -len("</body></html>")]


def test_output_is_a_document_the_teds_scorer_can_look_up() -> None:
    out = normalize_html("<table><tr><td>1</td></tr></table>")
    assert out == "<html><body><table><tr><td>1</td></tr></table></body></html>"
    root = lxml.html.fromstring(out)
    assert root.xpath("body/table")


def test_no_table_gives_empty_string() -> None:
    assert normalize_html("") == ""
    assert normalize_html("<p>no table</p>") == ""


def test_header_cells_become_data_cells_and_row_groups_are_unwrapped() -> None:
    html = (
        "<table><thead><tr><th>H</th></tr></thead><tbody><tr><td>1</td></tr></tbody>"
        "<tfoot><tr><td>f</td></tr></tfoot></table>"
    )
    assert body(html) == "<table><tr><td>H</td></tr><tr><td>1</td></tr><tr><td>f</td></tr></table>"


def test_inline_style_tags_are_dropped_keeping_their_text() -> None:
    html = (
        "<table><tr><td><b>B</b><i>I</i><strong>S</strong><em>E</em><u>U</u>"
        "x<sup>2</sup>y<sub>i</sub><span class='c'>sp</span><div><p>par</p></div></td></tr></table>"
    )
    assert body(html) == "<table><tr><td>BISEUx2yisppar</td></tr></table>"


def test_other_markup_inside_cells_is_kept() -> None:
    assert body("<table><tr><td>a<br>b</td></tr></table>") == (
        "<table><tr><td>a<br>b</td></tr></table>"
    )


def test_entities_decoded_nfkc_and_whitespace_collapsed() -> None:
    html = "<table>\n  <tr>\n <td>  A&amp;B&nbsp;&nbsp;\uff21\u00bd\n\tend </td>\n</tr></table>"
    # Newlines are deleted (as OmniDocBench does), other whitespace runs become one space.
    assert body(html) == "<table><tr><td> A&amp;B A1\u20442 end </td></tr></table>"


def test_escaped_markup_stays_text() -> None:
    assert body("<table><tr><td>&lt;b&gt;x&lt;/b&gt;</td></tr></table>") == (
        "<table><tr><td>&lt;b&gt;x&lt;/b&gt;</td></tr></table>"
    )


def test_attributes_go_except_spans_which_are_read_as_browsers_do() -> None:
    html = (
        "<table border='1' style='w'><tr class='r'><td style='x' width='3' colspan='2.0' "
        "rowspan='1'>a</td><td colspan='abc' rowspan=' 3'>b</td></tr></table>"
    )
    assert body(html) == '<table><tr><td colspan="2">a</td><td rowspan="3">b</td></tr></table>'


def test_math_becomes_its_alttext_and_colgroups_go() -> None:
    html = (
        "<table><colgroup><col span='2'></colgroup><tr>"
        "<td>area <math alttext='\\pi r^2'><mi>π</mi></math> m</td></tr></table>"
    )
    assert body(html) == "<table><tr><td>area $\\pi r^2$ m</td></tr></table>"


def test_only_the_first_table_is_kept() -> None:
    html = "x<table><tr><td>1</td></tr></table><table><tr><td>2</td></tr></table>"
    assert body(html) == "<table><tr><td>1</td></tr></table>"


def test_normalising_keeps_the_grid_of_a_plain_table() -> None:
    html = (
        "<table><thead><tr><th rowspan='2'> <b>Name</b></th><th colspan='2'>Score</th></tr>"
        "<tr><th>A</th><th>B</th></tr></thead><tbody><tr><td>x</td><td>1</td><td>2</td></tr>"
        "</tbody></table>"
    )
    before, after = html_to_table(html), html_to_table(normalize_html(html))
    assert before is not None and after is not None
    assert after.structure() == before.structure()
    assert after.text_grid()[0] == [" Name", "Score", "Score"]


@pytest.mark.parametrize(
    "html", ["<table", "<table><tr><td>a</td><td>b", "<table>\x00<tr><td>\ud800</td></tr></table>"]
)
def test_malformed_input_does_not_raise(html: str) -> None:
    assert isinstance(normalize_html(html), str)


@settings(max_examples=400, deadline=None)
@given(st.one_of(html_soup, st.text(), otsl_soup.map(otsl_to_html)))
def test_normalisation_is_idempotent(html: str) -> None:
    once = normalize_html(html)
    assert normalize_html(once) == once
