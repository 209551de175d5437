from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tables_support import tilings

from trivia.tables import Table, detect_format, is_complete, table_to_html, table_to_otsl


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        ("<table><tr><td>1</td></tr></table>", "html"),
        ("Here it is:\n<TABLE border=1>", "html"),
        ("<table", "html"),
        ("<fcel>a<nl>", "otsl"),
        ("<fcel>see the <tablet> row<nl>", "otsl"),
        ("", "otsl"),
    ],
)
def test_detect_format(text: str, fmt: str) -> None:
    assert detect_format(text) == fmt


@pytest.mark.parametrize(
    "text",
    [
        "<fcel>a<fcel>b<nl>\n",
        "<fcel>a<nl>",
        "<fcel>a<nl>  \n\t",
        "<table><tr><td>1</td></tr></table>",
        "<table><tr><td>1</td></tr></TABLE>\n",
        "<html><body><table><tr><td>1</td></tr></table></body></html>  ",
    ],
)
def test_finished_outputs_are_complete(text: str) -> None:
    assert is_complete(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n",
        "<fcel>a<fcel>b",
        "<fcel>a<nl>\n<fcel>b",
        "<fcel>a<n",
        "<table><tr><td>1</td></tr>",
        "<table><tr><td>1</td></tr></table></body>",
        "<table><tr><td><nl>",  # OTSL's terminator does not finish HTML
        "<fcel>a</table>",  # nor does HTML's finish OTSL
    ],
)
def test_truncated_or_empty_outputs_are_not_complete(text: str) -> None:
    assert not is_complete(text)


def nl_ends(otsl: str) -> set[int]:
    """Positions just after each row terminator (OTSL written here has none in cell text)."""
    ends, start = set(), 0
    while (found := otsl.find("<nl>", start)) != -1:
        ends.add(found + 4)
        start = found + 1
    return ends


@settings(max_examples=200, deadline=None)
@given(tilings(), st.data())
def test_truncated_otsl_is_complete_only_where_a_row_ended(
    table: Table, data: st.DataObject
) -> None:
    otsl = table_to_otsl(table)
    if table.n_rows:
        assert is_complete(otsl)
    cut = data.draw(st.integers(0, len(otsl)))
    prefix = otsl[:cut]
    assert is_complete(prefix) == (len(prefix.rstrip()) in nl_ends(otsl))


@settings(max_examples=200, deadline=None)
@given(tilings(), st.data())
def test_truncated_html_is_never_complete(table: Table, data: st.DataObject) -> None:
    html = table_to_html(table)
    assert is_complete(html)
    cut = data.draw(st.integers(0, len(html) - 1))
    assert not is_complete(html[:cut])


def test_otsl_whose_cell_text_holds_a_table_tag_stays_otsl() -> None:
    otsl = "<fcel><TABLE<nl>\n"
    assert detect_format(otsl) == "otsl"
    assert is_complete(otsl)
    assert detect_format("<table><tr><td><fcel></td></tr></table>") == "html"
